package inference

import (
	"container/list"

	"github.com/impetusllm/impetus/inference/model"
)

// prefixCache keeps the KV caches of finished sequences so that a new prompt
// sharing a prefix with one (a system prompt, the earlier turns of a
// conversation) starts from those keys and values instead of prefilling them.
// Entries are found through a chain hash of their full pages: the hash of
// page k covers every token up to the end of page k, so equal hashes mean
// (barring collisions, which lookups rule out by comparing tokens) equal
// prefixes. It is used by one scheduler goroutine only.
type prefixCache struct {
	lru   *list.List // of *prefixEntry, most recently used first
	index map[uint64][]*prefixEntry
}

type prefixEntry struct {
	tokens []int32 // the tokens whose keys and values cache holds
	cache  *model.KVCache
	hashes []uint64 // chain hash at the end of each full page
	elem   *list.Element
}

func newPrefixCache() *prefixCache {
	return &prefixCache{lru: list.New(), index: map[uint64][]*prefixEntry{}}
}

// pageHashes returns the chain hash at the end of each full page of tokens
// (FNV-1a over the token ids).
func pageHashes(tokens []int32) []uint64 {
	hs := make([]uint64, 0, len(tokens)/pageTokens)
	h := uint64(14695981039346656037)
	for i, t := range tokens {
		u := uint32(t)
		for b := 0; b < 4; b++ {
			h ^= uint64(byte(u >> (8 * b)))
			h *= 1099511628211
		}
		if (i+1)%pageTokens == 0 {
			hs = append(hs, h)
		}
	}
	return hs
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// related returns the entries sharing at least one full page with tokens,
// each once.
func (pc *prefixCache) related(hashes []uint64) []*prefixEntry {
	var out []*prefixEntry
	seen := map[*prefixEntry]bool{}
	for _, h := range hashes {
		es := pc.index[h]
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// lookup returns the entry sharing the longest prefix with prompt and the
// length of that prefix; nil when none shares a full page. It marks the
// entry as recently used.
func (pc *prefixCache) lookup(prompt []int32) (*prefixEntry, int) {
	var best *prefixEntry
	bestN := 0
	for _, e := range pc.related(pageHashes(prompt)) {
		if n := commonPrefix(e.tokens, prompt); n > bestN {
			best, bestN = e, n
		}
	}
	if best != nil {
		pc.lru.MoveToFront(best.elem)
	}
	return best, bestN
}

// insert adds the cache of tokens. Entries that tokens extend are superseded
// and returned in dropped; when an entry already holds tokens as its prefix,
// nothing is added and inserted is false. Caches shorter than a page are not
// kept.
func (pc *prefixCache) insert(tokens []int32, cache *model.KVCache) (dropped []*prefixEntry, inserted bool) {
	hashes := pageHashes(tokens)
	if len(hashes) == 0 {
		return nil, false
	}
	for _, e := range pc.related(hashes) {
		n := commonPrefix(e.tokens, tokens)
		switch {
		case n == len(tokens):
			pc.lru.MoveToFront(e.elem)
			return dropped, false
		case n == len(e.tokens):
			pc.remove(e)
			dropped = append(dropped, e)
		}
	}
	e := &prefixEntry{tokens: tokens, cache: cache, hashes: hashes}
	e.elem = pc.lru.PushFront(e)
	for _, h := range hashes {
		pc.index[h] = append(pc.index[h], e)
	}
	return dropped, true
}

// remove takes e out of the cache; its KV cache becomes the caller's.
func (pc *prefixCache) remove(e *prefixEntry) {
	pc.lru.Remove(e.elem)
	for _, h := range e.hashes {
		es := pc.index[h]
		for i, x := range es {
			if x == e {
				es = append(es[:i], es[i+1:]...)
				break
			}
		}
		if len(es) == 0 {
			delete(pc.index, h)
		} else {
			pc.index[h] = es
		}
	}
}

// oldest returns the least recently used entry other than keep, or nil.
func (pc *prefixCache) oldest(keep *prefixEntry) *prefixEntry {
	for el := pc.lru.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*prefixEntry); e != keep {
			return e
		}
	}
	return nil
}

// len is the number of entries.
func (pc *prefixCache) len() int { return pc.lru.Len() }
