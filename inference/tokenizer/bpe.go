package tokenizer

import (
	"math"
	"unicode/utf8"
)

// bpeModel turns one pre-token into ids. It has two merge rules:
//   - rank (Hugging Face BPE, GGUF "gpt2"): merge the adjacent pair with the
//     lowest merge rank, leftmost first;
//   - score (GGUF "llama", SentencePiece): merge the adjacent pair whose
//     concatenation is a vocabulary entry with the highest score, leftmost first.
//
// Both use a linked list of symbols and a heap of candidate pairs, so a word
// of n symbols costs O(n log n) rather than a quadratic rescan.
type bpeModel struct {
	vocab map[string]int32

	// byteLevel: pieces are raw bytes spelled in the byte-level alphabet, and
	// byteIDs[b] is the id of byte b's alphabet character. Otherwise pieces
	// are characters, and byteIDs[b] is the id of "<0xXX>" for byte fallback
	// (-1 when absent).
	byteLevel bool
	byteIDs   [256]int32

	merges map[uint64]mergeRule // rank mode

	scores    []float32 // score mode when non-nil
	mergeable []bool    // score mode: ids a merge may produce

	unk          int32 // -1 when the model has no unknown token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
}

type mergeRule struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

type symbol struct {
	id         int32
	start, end int32 // byte range in the word
	prev, next int32 // -1 at the ends
}

type candidate struct {
	key         uint64 // priority (lower first), then left index
	left, right int32
	a, b        int32 // rank mode: the pair's ids; score mode: left end and right end
}

// candHeap is a binary min-heap on key.
type candHeap []candidate

func (h *candHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].key <= s[i].key {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *candHeap) pop() candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].key < s[l].key {
			m = r
		}
		if s[i].key <= s[m].key {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// sortableFloat maps float order onto unsigned integer order.
func sortableFloat(f float32) uint32 {
	b := math.Float32bits(f)
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// encode appends the ids of word to out.
func (m *bpeModel) encode(word string, out []int32) []int32 {
	if word == "" {
		return out
	}
	if m.ignoreMerges {
		key := word
		if m.byteLevel {
			key = byteLevelEncode(word)
		}
		if id, ok := m.vocab[key]; ok {
			return append(out, id)
		}
	}
	syms := m.initialSymbols(word)
	if m.scores != nil {
		m.mergeByScore(word, syms)
		return m.emitScored(word, syms, out)
	}
	m.mergeByRank(syms)
	for i := 0; i >= 0 && i < len(syms); i = int(syms[i].next) {
		out = append(out, syms[i].id)
	}
	return out
}

func (m *bpeModel) initialSymbols(word string) []symbol {
	syms := make([]symbol, 0, len(word))
	add := func(id int32, start, end int) {
		syms = append(syms, symbol{id: id, start: int32(start), end: int32(end), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
	}
	if m.byteLevel {
		for i := 0; i < len(word); i++ {
			if id := m.byteIDs[word[i]]; id >= 0 {
				add(id, i, i+1)
			} else if m.unk >= 0 {
				add(m.unk, i, i+1)
			}
		}
	} else {
		for i := 0; i < len(word); {
			_, n := utf8.DecodeRuneInString(word[i:])
			ch := word[i : i+n]
			id, ok := m.vocab[ch]
			if ok && m.scores != nil && !m.mergeable[id] {
				ok = false
			}
			switch {
			case ok:
				add(id, i, i+n)
			case m.scores != nil:
				add(-1, i, i+n) // resolved to bytes after merging
			case m.byteFallback && m.hasBytes(ch):
				for k := 0; k < n; k++ {
					add(m.byteIDs[ch[k]], i+k, i+k+1)
				}
			case m.unk >= 0:
				if last := len(syms) - 1; m.fuseUnk && last >= 0 && syms[last].id == m.unk {
					syms[last].end = int32(i + n)
				} else {
					add(m.unk, i, i+n)
				}
			}
			i += n
		}
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}

func (m *bpeModel) hasBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if m.byteIDs[s[i]] < 0 {
			return false
		}
	}
	return true
}

// unlink folds symbol r into its left neighbour l.
func unlink(syms []symbol, l, r int32) {
	syms[l].end = syms[r].end
	syms[l].next = syms[r].next
	if n := syms[r].next; n >= 0 {
		syms[n].prev = l
	}
	syms[r].start, syms[r].end, syms[r].id = -1, -1, -1
}

func (m *bpeModel) mergeByRank(syms []symbol) {
	if len(syms) < 2 {
		return
	}
	h := make(candHeap, 0, len(syms))
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		a, b := syms[l].id, syms[r].id
		if rule, ok := m.merges[pairKey(a, b)]; ok {
			h.push(candidate{key: uint64(uint32(rule.rank))<<32 | uint64(uint32(l)), left: l, right: r, a: a, b: b})
		}
	}
	for i := 0; i+1 < len(syms); i++ {
		try(int32(i), int32(i+1))
	}
	for len(h) > 0 {
		c := h.pop()
		l, r := c.left, c.right
		if syms[l].start < 0 || syms[l].next != r || syms[l].id != c.a || syms[r].id != c.b {
			continue // stale
		}
		syms[l].id = m.merges[pairKey(c.a, c.b)].id
		unlink(syms, l, r)
		try(syms[l].prev, l)
		try(l, syms[l].next)
	}
}

func (m *bpeModel) mergeByScore(word string, syms []symbol) {
	if len(syms) < 2 {
		return
	}
	h := make(candHeap, 0, len(syms))
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		id, ok := m.vocab[word[syms[l].start:syms[r].end]]
		if !ok || !m.mergeable[id] {
			return
		}
		key := uint64(sortableFloat(-m.scores[id]))<<32 | uint64(uint32(l))
		h.push(candidate{key: key, left: l, right: r, a: syms[l].end, b: syms[r].end})
	}
	for i := 0; i+1 < len(syms); i++ {
		try(int32(i), int32(i+1))
	}
	for len(h) > 0 {
		c := h.pop()
		l, r := c.left, c.right
		if syms[l].start < 0 || syms[l].next != r || syms[l].end != c.a || syms[r].end != c.b {
			continue
		}
		syms[l].id = m.vocab[word[syms[l].start:syms[r].end]]
		unlink(syms, l, r)
		try(syms[l].prev, l)
		try(l, syms[l].next)
	}
}

// emitScored writes the merged symbols, spelling a character missing from
// the vocabulary as byte tokens (or unk).
func (m *bpeModel) emitScored(word string, syms []symbol, out []int32) []int32 {
	for i := 0; i >= 0 && i < len(syms); i = int(syms[i].next) {
		s := syms[i]
		if s.id >= 0 {
			out = append(out, s.id)
			continue
		}
		text := word[s.start:s.end]
		if m.hasBytes(text) {
			for k := 0; k < len(text); k++ {
				out = append(out, m.byteIDs[text[k]])
			}
		} else if m.unk >= 0 {
			out = append(out, m.unk)
		}
	}
	return out
}
