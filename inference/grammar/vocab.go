package grammar

import (
	"bytes"
	"slices"
)

// Vocab is a model's vocabulary arranged for masking: a byte trie over the
// tokens, so that a mask walks shared prefixes once and drops whole subtrees
// at the first byte the grammar refuses. Build it once per model.
type Vocab struct {
	tokens [][]byte
	isEOS  []bool
	eos    []int32
	maxLen int

	all trie // every non-empty token
	// Inside a JSON string almost every token is legal, so walking the full
	// trie there would visit nearly all of it. Instead, tokens of plain string
	// bytes (no quote, backslash or control byte) are decided by a precomputed
	// table, and only the rest (quoteish) are walked.
	plainOK    []bool  // token is plain and valid UTF-8 continuing from a character boundary
	plainChars []int32 // code points a plainOK token adds to a string (for maxLength)
	maxChars   int32   // the most any plainOK token adds
	quoteish   trie    // non-empty tokens that are not plain
}

// trie is a flattened byte trie. Node 0 is the root; node i's children are
// edges edgeLo[i]..edgeHi[i] (sorted by byte) and the tokens spelled exactly
// by its path are ids[tokLo[i]:tokHi[i]].
type trie struct {
	edgeLo, edgeHi []int32
	edgeByte       []byte
	edgeChild      []int32
	tokLo, tokHi   []int32
	ids            []int32 // token ids sorted by their bytes
}

// NewVocab indexes tokens (tokens[i] = the bytes token i decodes to; empty
// for special tokens, which the grammar never allows) and the end-of-sequence
// ids, which are allowed exactly when the JSON value is complete.
func NewVocab(tokens [][]byte, eos []int32) *Vocab {
	v := &Vocab{tokens: tokens, isEOS: make([]bool, len(tokens))}
	for _, id := range eos {
		if id >= 0 && int(id) < len(tokens) {
			v.isEOS[id] = true
			v.eos = append(v.eos, id)
		}
	}
	var all, quoteish []int32
	v.plainOK = make([]bool, len(tokens))
	v.plainChars = make([]int32, len(tokens))
	for i, t := range tokens {
		if len(t) == 0 || v.isEOS[i] {
			continue
		}
		v.maxLen = max(v.maxLen, len(t))
		all = append(all, int32(i))
		if isPlain(t) {
			v.plainOK[i], v.plainChars[i] = plainValid(t)
			v.maxChars = max(v.maxChars, v.plainChars[i])
		} else {
			quoteish = append(quoteish, int32(i))
		}
	}
	v.all = buildTrie(tokens, all)
	v.quoteish = buildTrie(tokens, quoteish)
	return v
}

// Size is the number of tokens (the length masks must have).
func (v *Vocab) Size() int { return len(v.tokens) }

// Token returns the bytes of token id.
func (v *Vocab) Token(id int32) []byte { return v.tokens[id] }

// IsEOS reports whether id ends the sequence.
func (v *Vocab) IsEOS(id int32) bool { return id >= 0 && int(id) < len(v.isEOS) && v.isEOS[id] }

// isPlain reports whether every byte of t may appear raw inside a JSON string
// without ending it or starting an escape.
func isPlain(t []byte) bool {
	for _, c := range t {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainValid runs a plain token through the string matcher from a character
// boundary, so the table agrees with the matcher by construction, and
// returns the code points it counted.
func plainValid(t []byte) (bool, int32) {
	stk := []frame{{n: keyString, phase: phStr}}
	for _, c := range t {
		var act action
		stk, act, _ = step(stk, c)
		if act != actOK {
			return false, 0
		}
	}
	return true, stk[0].a
}

func buildTrie(tokens [][]byte, ids []int32) trie {
	ids = slices.Clone(ids)
	slices.SortStableFunc(ids, func(a, b int32) int { return bytes.Compare(tokens[a], tokens[b]) })
	t := trie{ids: ids}
	t.newNode()
	t.build(tokens, 0, 0, int32(len(ids)), 0)
	return t
}

func (t *trie) newNode() int32 {
	t.edgeLo = append(t.edgeLo, 0)
	t.edgeHi = append(t.edgeHi, 0)
	t.tokLo = append(t.tokLo, 0)
	t.tokHi = append(t.tokHi, 0)
	return int32(len(t.tokLo) - 1)
}

// build fills node nd, whose path is the common prefix (length depth) of the
// sorted ids[lo:hi]. A node's edges are reserved as one block before its
// children are built, so they are contiguous.
func (t *trie) build(tokens [][]byte, nd int32, lo, hi int32, depth int) {
	i := lo
	for i < hi && len(tokens[t.ids[i]]) == depth {
		i++
	}
	t.tokLo[nd], t.tokHi[nd] = lo, i
	base := int32(len(t.edgeByte))
	// Reserve one edge per distinct byte at depth; remember each group's start
	// in edgeChild until the child is built.
	for i < hi {
		c := tokens[t.ids[i]][depth]
		t.edgeByte = append(t.edgeByte, c)
		t.edgeChild = append(t.edgeChild, i)
		for i < hi && tokens[t.ids[i]][depth] == c {
			i++
		}
	}
	end := int32(len(t.edgeByte))
	t.edgeLo[nd], t.edgeHi[nd] = base, end
	for e := base; e < end; e++ {
		glo, ghi := t.edgeChild[e], hi
		if e+1 < end {
			ghi = t.edgeChild[e+1]
		}
		child := t.newNode()
		t.edgeChild[e] = child
		t.build(tokens, child, glo, ghi, depth+1)
	}
}
