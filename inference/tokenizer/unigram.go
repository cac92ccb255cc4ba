package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// unigramModel is SentencePiece's Unigram (XLM-R, multilingual-e5, bge-m3,
// T5): each pre-token is cut into the vocabulary pieces whose scores (log
// probabilities) sum highest, found by Viterbi over character positions. A
// character no piece starts with becomes the unknown token at the lowest
// score less 10, and runs of unknown characters fuse into one unknown
// token (or, with byte_fallback, into their <0xXX> byte pieces).
type unigramModel struct {
	scores       []float64
	vocab        map[string]int32
	trie         pieceTrie
	unk          int32
	unkScore     float64
	byteFallback bool
	byteIDs      [256]int32
}

// pieceTrie is a byte trie over the matchable pieces, for the prefix
// search that finds every piece starting at a position.
type pieceTrie struct {
	next map[uint64]int32 // (node << 8 | byte) -> child node
	id   []int32          // node -> piece id, -1 when no piece ends there
}

func (t *pieceTrie) add(piece string, id int32) {
	if t.next == nil {
		t.next = map[uint64]int32{}
		t.id = []int32{-1}
	}
	node := int32(0)
	for i := 0; i < len(piece); i++ {
		k := uint64(node)<<8 | uint64(piece[i])
		child, ok := t.next[k]
		if !ok {
			child = int32(len(t.id))
			t.id = append(t.id, -1)
			t.next[k] = child
		}
		node = child
	}
	t.id[node] = id
}

type hfUnigram struct {
	Type         string            `json:"type"`
	UnkID        *int              `json:"unk_id"`
	Vocab        []json.RawMessage `json:"vocab"`
	ByteFallback bool              `json:"byte_fallback"`
}

// parseUnigram reads the model section: vocab is a list of [piece, score]
// pairs whose index is the id.
func parseUnigram(raw json.RawMessage) (*hfUnigram, []string, []float64, error) {
	var m hfUnigram
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("parse Unigram model: %w", err)
	}
	if len(m.Vocab) == 0 {
		return nil, nil, nil, errors.New("Unigram model has an empty vocab")
	}
	pieces := make([]string, len(m.Vocab))
	scores := make([]float64, len(m.Vocab))
	for i, e := range m.Vocab {
		var pair []json.RawMessage
		if err := json.Unmarshal(e, &pair); err != nil || len(pair) != 2 {
			return nil, nil, nil, fmt.Errorf("Unigram vocab entry %d is not a [piece, score] pair", i)
		}
		if err := json.Unmarshal(pair[0], &pieces[i]); err != nil {
			return nil, nil, nil, fmt.Errorf("Unigram vocab entry %d piece: %w", i, err)
		}
		if err := json.Unmarshal(pair[1], &scores[i]); err != nil {
			return nil, nil, nil, fmt.Errorf("Unigram vocab entry %d score: %w", i, err)
		}
		if pieces[i] == "" {
			return nil, nil, nil, fmt.Errorf("Unigram vocab entry %d is an empty piece", i)
		}
	}
	if m.UnkID == nil {
		return nil, nil, nil, errors.New("Unigram model has no unk_id")
	}
	if *m.UnkID < 0 || *m.UnkID >= len(pieces) {
		return nil, nil, nil, fmt.Errorf("Unigram unk_id %d is outside the %d pieces", *m.UnkID, len(pieces))
	}
	return &m, pieces, scores, nil
}

// buildUnigram sets up the model once the added tokens are known: pieces
// of special added tokens are left out of the trie, as SentencePiece
// leaves out its control symbols, so that text never encodes to them.
func (t *Tokenizer) buildUnigram(m *hfUnigram, pieces []string, scores []float64) {
	u := &unigramModel{scores: scores, vocab: make(map[string]int32, len(pieces)), unk: int32(*m.UnkID), byteFallback: m.ByteFallback}
	minScore := math.Inf(1)
	for i, p := range pieces {
		u.vocab[p] = int32(i) // a repeated piece keeps its last id, as in Hugging Face
		minScore = min(minScore, scores[i])
	}
	u.unkScore = minScore - 10
	for p, id := range u.vocab {
		if int(id) < len(t.special) && t.special[id] {
			continue
		}
		u.trie.add(p, id)
	}
	for b := range 256 {
		u.byteIDs[b] = -1
		if id, ok := u.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			u.byteIDs[b] = id
		}
	}
	t.unk = u.unk
	t.uni = u
}

// encode appends the ids of one pre-token.
func (m *unigramModel) encode(w string, out []int32) []int32 {
	if w == "" {
		return out
	}
	// best[i] is the best segmentation of w[:i]: its score, the start of
	// its last piece (-1: not reached) and that piece's id.
	type node struct {
		score float64
		start int32
		id    int32
	}
	best := make([]node, len(w)+1)
	for i := 1; i < len(best); i++ {
		best[i].start = -1
	}
	for start := 0; start < len(w); {
		here := best[start].score
		_, clen := utf8.DecodeRuneInString(w[start:])
		single := false
		cur := int32(0)
		for i := start; i < len(w); i++ {
			child, ok := m.trie.next[uint64(cur)<<8|uint64(w[i])]
			if !ok {
				break
			}
			cur = child
			id := m.trie.id[cur]
			if id < 0 {
				continue
			}
			end := i + 1
			if s := here + m.scores[id]; best[end].start < 0 || s > best[end].score {
				best[end] = node{score: s, start: int32(start), id: id}
			}
			if end-start == clen {
				single = true
			}
		}
		if !single {
			end := start + clen
			if s := here + m.unkScore; best[end].start < 0 || s > best[end].score {
				best[end] = node{score: s, start: int32(start), id: m.unk}
			}
		}
		start += clen
	}
	// Walk back from the end, fusing runs of unknown characters.
	n := len(out)
	unkEnd := -1
	for end := len(w); end > 0; {
		b := best[end]
		start := int(b.start)
		if b.id == m.unk {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				out = m.appendUnknown(w[end:unkEnd], out)
				unkEnd = -1
			}
			out = append(out, b.id)
		}
		end = start
	}
	if unkEnd >= 0 {
		out = m.appendUnknown(w[:unkEnd], out)
	}
	// The walk produced the ids backwards (byte runs included).
	reverseIDs(out[n:])
	return out
}

// appendUnknown appends a fused run of unknown characters: its own id when
// the run happens to be a piece, its bytes with byte fallback, or unk. The
// ids go in reversed, as encode builds its output backwards.
func (m *unigramModel) appendUnknown(s string, out []int32) []int32 {
	if id, ok := m.vocab[s]; ok {
		return append(out, id)
	}
	if m.byteFallback {
		ok := true
		for i := 0; i < len(s) && ok; i++ {
			ok = m.byteIDs[s[i]] >= 0
		}
		if ok {
			for i := len(s) - 1; i >= 0; i-- {
				out = append(out, m.byteIDs[s[i]])
			}
			return out
		}
	}
	return append(out, m.unk)
}

func reverseIDs(a []int32) {
	for i, j := 0, len(a)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = a[j], a[i]
	}
}
