// Package tokenizer encodes text to token ids and back exactly as Hugging Face
// tokenizers do, for the BPE families used by causal LMs: byte-level BPE
// (GPT-2, Llama 3, Qwen, SmolLM, DeepSeek, StarCoder) and SentencePiece-style
// BPE with byte fallback (Llama 2, Mistral, Phi-3, Gemma), BERT's
// WordPiece and SentencePiece's Unigram (XLM-R) for encoder embedding models. It builds from a
// tokenizer.json folder, from a GGUF vocabulary, or from GPT-2 style
// encoder.json + vocab.bpe files.
package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer is immutable after construction and safe for concurrent use.
type Tokenizer struct {
	tokens   []string // id -> text in the model's own spelling ("" for holes)
	vocab    map[string]int32
	special  []bool
	tokBytes [][]byte // id -> raw bytes the token stands for in running text

	// tokStrings holds tokBytes as strings for the tokens that are complete
	// UTF-8 on their own ("" otherwise), built on first use, so a stream
	// decoder releases most tokens without allocating (TokenString).
	tokStringsOnce sync.Once
	tokStrings     []string

	added         *addedMatcher
	normAdded     bool // some added tokens match normalized text
	norm          normalizer
	pre           preTokenizer
	model         *bpeModel       // nil for WordPiece
	wp            *wordPieceModel // nil unless WordPiece
	uni           *unigramModel   // nil unless Unigram
	prefix        []int32         // post-processor ids before the text
	suffix        []int32         // and after it
	dec           *decoderPipeline
	cleanUpSpaces bool

	bos, eos, pad, unk int32 // -1 when absent
	eog                []int32

	// metaSplit, when set, is SentencePiece's "▁". Text is cut before a ▁
	// that follows another character unless one of the few bridge tokens
	// (entries with such an "x▁" inside) occurs across the cut; no token can
	// then span it, so the ids are unchanged. This turns the one huge piece of
	// pre-tokenizer-less SentencePiece models into short, cacheable words.
	metaSplit string
	bridges   []bridgeToken

	cache wordCache
}

// wordCache remembers the ids of recent pre-tokens. It is bounded: when
// full it is emptied, which keeps the common words hot without growing.
type wordCache struct {
	mu sync.Mutex
	m  map[string][]int32
}

const (
	maxCacheEntries = 1 << 16
	maxCachedWord   = 64
)

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[w]
	c.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[string][]int32, 1024)
	}
	c.m[w] = ids
	c.mu.Unlock()
}

// Encode tokenizes text the way Hugging Face's tokenizer(text) does: added
// and special tokens written in text are matched, and when addSpecial is set
// the post-processor's BOS/EOS are added.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int32 {
	ids := t.encode(text, specialPolicy{all: true})
	if addSpecial {
		ids = t.PostProcess(ids)
	}
	return ids
}

// EncodeWithSpecials tokenizes trusted text such as a rendered chat template:
// special-token text becomes control ids, and no BOS/EOS is added (templates
// write their own).
func (t *Tokenizer) EncodeWithSpecials(text string) []int32 {
	return t.encode(text, specialPolicy{all: true})
}

// EncodeWithSpecialsWhere is EncodeWithSpecials where a special token written
// in text becomes its control id only if allow approves its byte range
// [start, end); elsewhere it is encoded as ordinary text. A chat server can
// pass the spans its template wrote itself, so that special-token text inside
// user content stays text while everything else encodes as Hugging Face does.
func (t *Tokenizer) EncodeWithSpecialsWhere(text string, allow func(start, end int) bool) []int32 {
	return t.encode(text, specialPolicy{at: allow})
}

// EncodePlain tokenizes untrusted text: special-token text is encoded as
// ordinary text, so user content can never inject control tokens. Non-special
// added tokens still match, as in Hugging Face with split_special_tokens.
func (t *Tokenizer) EncodePlain(text string) []int32 { return t.encode(text, specialPolicy{}) }

// PostProcess adds the post-processor's special ids (BOS/EOS) around ids.
func (t *Tokenizer) PostProcess(ids []int32) []int32 {
	if len(t.prefix) == 0 && len(t.suffix) == 0 {
		return ids
	}
	out := make([]int32, 0, len(ids)+len(t.prefix)+len(t.suffix))
	out = append(out, t.prefix...)
	out = append(out, ids...)
	return append(out, t.suffix...)
}

func (t *Tokenizer) encode(text string, sp specialPolicy) []int32 {
	out := make([]int32, 0, len(text)/3+4)
	for _, seg := range t.added.split(text, true, false, sp, nil) {
		if seg.id >= 0 {
			out = append(out, seg.id)
			continue
		}
		s := seg.text
		if t.norm != nil {
			s = t.norm(s)
		}
		if !t.normAdded {
			out = t.encodeNormalized(s, seg.start, out)
			continue
		}
		// Offsets in normalized text no longer match the input, so only an
		// allow-everywhere policy lets special tokens match here.
		for _, sub := range t.added.split(s, seg.start, true, specialPolicy{all: sp.all}, nil) {
			if sub.id >= 0 {
				out = append(out, sub.id)
			} else {
				out = t.encodeNormalized(sub.text, sub.start, out)
			}
		}
	}
	return out
}

func (t *Tokenizer) encodeNormalized(s string, start bool, out []int32) []int32 {
	if s == "" {
		return out
	}
	if t.pre == nil {
		return t.encodeChunks(s, out)
	}
	for _, p := range t.pre.split([]piece{{s, start}}) {
		out = t.encodeChunks(p.text, out)
	}
	return out
}

// encodeChunks encodes one pre-token, cut at safe ▁ boundaries when allowed.
func (t *Tokenizer) encodeChunks(s string, out []int32) []int32 {
	if t.metaSplit == "" {
		return t.encodeWord(s, out)
	}
	m := t.metaSplit
	start := 0
	for i := 1; i < len(s); {
		k := strings.Index(s[i:], m)
		if k < 0 {
			break
		}
		i += k
		if !strings.HasSuffix(s[:i], m) && !t.bridged(s, i) {
			out = t.encodeWord(s[start:i], out)
			start = i
		}
		i += len(m)
	}
	return t.encodeWord(s[start:], out)
}

func (t *Tokenizer) encodeWord(w string, out []int32) []int32 {
	if t.wp != nil {
		return t.wp.encode(w, out)
	}
	if len(w) > maxCachedWord {
		return t.encodeModel(w, out)
	}
	if ids, ok := t.cache.get(w); ok {
		return append(out, ids...)
	}
	n := len(out)
	out = t.encodeModel(w, out)
	t.cache.put(w, append([]int32(nil), out[n:]...))
	return out
}

// encodeModel runs the BPE or Unigram model on one pre-token.
func (t *Tokenizer) encodeModel(w string, out []int32) []int32 {
	if t.uni != nil {
		return t.uni.encode(w, out)
	}
	return t.model.encode(w, out)
}

// Decode turns ids back into text as Hugging Face's decode does, optionally
// leaving out special tokens. Unknown ids are ignored.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) || skipSpecial && t.special[id] {
			continue
		}
		toks = append(toks, t.tokens[id])
	}
	s := t.dec.decode(toks)
	if t.cleanUpSpaces {
		s = cleanUpSpaces(s)
	}
	return s
}

// TokenBytes returns the raw bytes token id stands for inside running text
// (a leading space included, "<0x0A>" as one byte 0x0A). The slice must not
// be modified. Unknown ids give nil.
func (t *Tokenizer) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokBytes) {
		return nil
	}
	return t.tokBytes[id]
}

// tokenString returns the text of id when its bytes are complete, valid
// UTF-8 on their own; ok is false otherwise.
func (t *Tokenizer) tokenString(id int32) (s string, ok bool) {
	t.tokStringsOnce.Do(func() {
		t.tokStrings = make([]string, len(t.tokBytes))
		for i, b := range t.tokBytes {
			if len(b) > 0 && utf8.Valid(b) {
				t.tokStrings[i] = string(b)
			}
		}
	})
	if id < 0 || int(id) >= len(t.tokStrings) {
		return "", false
	}
	s = t.tokStrings[id]
	return s, s != ""
}

// TokenText returns the vocabulary spelling of id ("Ġhello", "▁hello", "<s>").
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID looks up a token by its vocabulary spelling.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.vocab[text]
	return id, ok
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// IsSpecial reports whether id is a special (control) token, which decoding
// can skip and plain encoding never produces.
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// BOS returns the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// PAD returns the padding id, or -1.
func (t *Tokenizer) PAD() int32 { return t.pad }

// EOG returns the ids known to end generation (EOS plus GGUF EOT/EOM).
func (t *Tokenizer) EOG() []int32 { return append([]int32(nil), t.eog...) }

// AddsBOS reports whether Encode with addSpecial puts BOS first.
func (t *Tokenizer) AddsBOS() bool { return len(t.prefix) > 0 && t.prefix[0] == t.bos && t.bos >= 0 }

// finish fills the derived tables once the components are set.
func (t *Tokenizer) finish() {
	t.tokBytes = make([][]byte, len(t.tokens))
	for id, tok := range t.tokens {
		t.tokBytes[id] = t.dec.local(tok)
	}
	t.metaSplit, t.bridges = "", nil
	if t.model != nil && !t.model.byteLevel {
		if b, ok := findBridges(t.model); ok {
			t.metaSplit, t.bridges = "▁", b
		}
	}
	t.eog = nil
	if t.eos >= 0 {
		t.eog = append(t.eog, t.eos)
	}
}

// addEOG records another end-of-generation id once.
func (t *Tokenizer) addEOG(id int32) {
	if id < 0 || int(id) >= len(t.tokens) {
		return
	}
	for _, e := range t.eog {
		if e == id {
			return
		}
	}
	t.eog = append(t.eog, id)
}

// bridgeToken is a vocabulary entry holding ▁ after another character;
// offs are the byte offsets of those ▁.
type bridgeToken struct {
	text string
	offs []int
}

// maxBridges bounds the per-cut check; vocabularies with more bridge tokens
// are encoded without cutting.
const maxBridges = 256

// findBridges lists the model's bridge tokens, or reports false when there
// are too many for cutting to pay off.
func findBridges(m *bpeModel) ([]bridgeToken, bool) {
	var out []bridgeToken
	for tok, id := range m.vocab {
		if m.mergeable != nil && !m.mergeable[id] {
			continue
		}
		var offs []int
		prev := rune(-1)
		for i, r := range tok {
			if r == '▁' && prev != -1 && prev != '▁' {
				offs = append(offs, i)
			}
			prev = r
		}
		if len(offs) > 0 {
			if len(out) == maxBridges {
				return nil, false
			}
			out = append(out, bridgeToken{tok, offs})
		}
	}
	return out, true
}

// bridged reports whether a bridge token occurs in s across byte offset i.
func (t *Tokenizer) bridged(s string, i int) bool {
	for _, b := range t.bridges {
		for _, o := range b.offs {
			if st := i - o; st >= 0 && st+len(b.text) <= len(s) && s[st:st+len(b.text)] == b.text {
				return true
			}
		}
	}
	return false
}
