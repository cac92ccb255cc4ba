package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Load reads a Hugging Face tokenizer folder: tokenizer.json and, when
// present, tokenizer_config.json.
func Load(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer config: %w", err)
	}
	// Older repositories name bos/eos/pad/unk only in special_tokens_map.json.
	sm, err := os.ReadFile(filepath.Join(dir, "special_tokens_map.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load special tokens map: %w", err)
	}
	if cj, err = mergeSpecialTokensMap(cj, sm); err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", dir, err)
	}
	t, err := FromJSON(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", dir, err)
	}
	return t, nil
}

// mergeSpecialTokensMap fills the bos/eos/pad/unk names missing from
// tokenizer_config.json with those of special_tokens_map.json.
func mergeSpecialTokensMap(configJSON, mapJSON []byte) ([]byte, error) {
	if len(mapJSON) == 0 {
		return configJSON, nil
	}
	cfg := map[string]json.RawMessage{}
	if len(configJSON) > 0 {
		if err := json.Unmarshal(configJSON, &cfg); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
	}
	var sm map[string]json.RawMessage
	if err := json.Unmarshal(mapJSON, &sm); err != nil {
		return nil, fmt.Errorf("parse special_tokens_map.json: %w", err)
	}
	changed := false
	for _, k := range []string{"bos_token", "eos_token", "pad_token", "unk_token"} {
		if v, ok := sm[k]; ok {
			if cur, has := cfg[k]; !has || string(cur) == "null" {
				cfg[k] = v
				changed = true
			}
		}
	}
	if !changed {
		return configJSON, nil
	}
	return json.Marshal(cfg)
}

type hfAdded struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfFile struct {
	AddedTokens   []hfAdded       `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type hfModel struct {
	Type                    string           `json:"type"`
	Vocab                   map[string]int32 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
	ByteFallback            bool             `json:"byte_fallback"`
	FuseUnk                 bool             `json:"fuse_unk"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	Dropout                 *float64         `json:"dropout"`
	MaxInputCharsPerWord    *int             `json:"max_input_chars_per_word"`
}

// hfConfig is the part of tokenizer_config.json that affects ids.
type hfConfig struct {
	AddBOS       *bool                  `json:"add_bos_token"`
	AddEOS       *bool                  `json:"add_eos_token"`
	BOS          tokenName              `json:"bos_token"`
	EOS          tokenName              `json:"eos_token"`
	PAD          tokenName              `json:"pad_token"`
	UNK          tokenName              `json:"unk_token"`
	CleanUp      *bool                  `json:"clean_up_tokenization_spaces"`
	AddedDecoder map[string]hfAddedNoID `json:"added_tokens_decoder"`
}

type hfAddedNoID struct {
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// tokenName accepts "<s>" or {"content": "<s>", ...}.
type tokenName string

func (n *tokenName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = tokenName(s)
		return nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("token name: %w", err)
	}
	*n = tokenName(o.Content)
	return nil
}

// component is any {"type": ...} object of tokenizer.json.
type component struct {
	Type string `json:"type"`
	raw  json.RawMessage
}

func parseComponent(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	c.raw = raw
	return &c, nil
}

func (c *component) into(v any) error {
	if err := json.Unmarshal(c.raw, v); err != nil {
		return fmt.Errorf("%s: %w", c.Type, err)
	}
	return nil
}

// FromJSON builds a tokenizer from the bytes of tokenizer.json and (optional,
// may be nil) tokenizer_config.json.
func FromJSON(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	var cfg hfConfig
	if len(configJSON) > 0 {
		if err := json.Unmarshal(configJSON, &cfg); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(f.Model, &head); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	if head.Type != "" && head.Type != "BPE" && head.Type != "WordPiece" && head.Type != "Unigram" {
		return nil, fmt.Errorf("unsupported model type %q (only BPE, WordPiece and Unigram)", head.Type)
	}
	var m hfModel
	var uni *hfUnigram
	var uniPieces []string
	var uniScores []float64
	if head.Type == "Unigram" {
		var err error
		if uni, uniPieces, uniScores, err = parseUnigram(f.Model); err != nil {
			return nil, err
		}
		m.Type = "Unigram"
		m.Vocab = make(map[string]int32, len(uniPieces))
		for i, p := range uniPieces {
			m.Vocab[p] = int32(i)
		}
	} else if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	if m.Type == "" && m.Vocab != nil && m.Merges != nil {
		m.Type = "BPE"
	}
	if m.Type != "BPE" && m.Type != "WordPiece" && m.Type != "Unigram" {
		return nil, fmt.Errorf("unsupported model type %q (only BPE, WordPiece and Unigram)", m.Type)
	}
	if m.Type == "BPE" && (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, errors.New("unsupported BPE option continuing_subword_prefix/end_of_word_suffix")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, errors.New("unsupported BPE dropout")
	}

	t := &Tokenizer{vocab: make(map[string]int32, len(m.Vocab)+len(f.AddedTokens)), bos: -1, eos: -1, pad: -1, unk: -1}
	maxID := int32(-1)
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("negative id %d for token %q", id, tok)
		}
		t.vocab[tok] = id
		maxID = max(maxID, id)
	}
	// Added tokens: tokenizer.json first, then tokenizer_config.json entries.
	added := map[int32]*addedToken{}
	for _, a := range f.AddedTokens {
		added[a.ID] = &addedToken{id: a.ID, content: a.Content, special: a.Special, lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord, normalized: a.Normalized}
	}
	for k, a := range cfg.AddedDecoder {
		var id int32
		if _, err := fmt.Sscanf(k, "%d", &id); err != nil {
			return nil, fmt.Errorf("added_tokens_decoder key %q: %w", k, err)
		}
		if _, ok := added[id]; !ok {
			added[id] = &addedToken{id: id, content: a.Content, special: a.Special, lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord, normalized: a.Normalized}
		}
	}
	// Ids may leave holes, but not so many that a hostile file could make
	// us allocate a huge table.
	limit := int32(2*(len(m.Vocab)+len(added)) + 1024)
	if maxID >= limit {
		return nil, fmt.Errorf("vocab id %d is far beyond the %d entries", maxID, len(m.Vocab))
	}
	var addedList []*addedToken
	for id, a := range added {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("added token %q has unreasonable id %d", a.content, id)
		}
		maxID = max(maxID, id)
		addedList = append(addedList, a)
	}
	t.tokens = make([]string, maxID+1)
	t.special = make([]bool, maxID+1)
	for tok, id := range m.Vocab {
		t.tokens[id] = tok
	}
	for _, a := range addedList {
		t.tokens[a.id] = a.content
		t.special[a.id] = a.special
		t.vocab[a.content] = a.id
		if a.normalized {
			t.normAdded = true
		}
	}
	t.added = newAddedMatcher(addedList)

	var err error
	byteLevel := false
	if t.norm, byteLevel, err = buildNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	var preByteLevel bool
	if t.pre, preByteLevel, err = buildPreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	byteLevel = byteLevel || preByteLevel
	if t.dec, err = buildDecoder(f.Decoder); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}

	if m.Type == "Unigram" {
		t.buildUnigram(uni, uniPieces, uniScores)
	} else if m.Type == "WordPiece" {
		if err := t.buildWordPiece(&m); err != nil {
			return nil, err
		}
	} else if err := t.buildBPE(&m, byteLevel); err != nil {
		return nil, err
	}

	// Special ids named by the config.
	lookup := func(n tokenName) int32 {
		if n == "" {
			return -1
		}
		if id, ok := t.vocab[string(n)]; ok {
			return id
		}
		return -1
	}
	t.bos, t.eos, t.pad = lookup(cfg.BOS), lookup(cfg.EOS), lookup(cfg.PAD)
	if u := lookup(cfg.UNK); u >= 0 {
		t.unk = u
	}
	if t.prefix, t.suffix, err = buildPostProcessor(f.PostProcessor, t.vocab); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	for _, id := range append(append([]int32(nil), t.prefix...), t.suffix...) {
		if id < 0 || int(id) >= len(t.tokens) {
			return nil, fmt.Errorf("post_processor: id %d is outside the vocabulary", id)
		}
	}
	if t.bos < 0 && len(t.prefix) > 0 {
		t.bos = t.prefix[0]
	}
	t.prefix = overrideSpecial(t.prefix, t.bos, cfg.AddBOS, true)
	t.suffix = overrideSpecial(t.suffix, t.eos, cfg.AddEOS, false)
	t.cleanUpSpaces = cfg.CleanUp != nil && *cfg.CleanUp
	t.finish()
	return t, nil
}

// overrideSpecial applies tokenizer_config's add_bos_token/add_eos_token,
// which transformers lets override the template for Llama-style tokenizers.
func overrideSpecial(ids []int32, id int32, want *bool, atFront bool) []int32 {
	if want == nil || id < 0 {
		return ids
	}
	has := false
	var rest []int32
	for _, x := range ids {
		if x == id {
			has = true
		} else {
			rest = append(rest, x)
		}
	}
	switch {
	case *want && !has && atFront:
		return append([]int32{id}, ids...)
	case *want && !has:
		return append(append([]int32(nil), ids...), id)
	case !*want && has:
		return rest
	}
	return ids
}

// parseMerges accepts ["a b", ...] or [["a","b"], ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, 0, len(strs))
		for _, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("merge %q is not two tokens", s)
			}
			out = append(out, [2]string{a, b})
		}
		return out, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("parse merges: %w", err)
	}
	return pairs, nil
}

func buildMergeTable(vocab map[string]int32, pairs [][2]string) (map[uint64]mergeRule, error) {
	table := make(map[uint64]mergeRule, len(pairs))
	for rank, p := range pairs {
		a, ok1 := vocab[p[0]]
		b, ok2 := vocab[p[1]]
		ab, ok3 := vocab[p[0]+p[1]]
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("merge %q %q uses a token missing from the vocab", p[0], p[1])
		}
		k := pairKey(a, b)
		if _, dup := table[k]; !dup {
			table[k] = mergeRule{rank: int32(rank), id: ab}
		}
	}
	return table, nil
}

type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func (p hfPattern) matcher() (matcher, error) {
	switch {
	case p.String != nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		return newMatcher(*p.Regex)
	}
	return nil, errors.New("pattern has neither String nor Regex")
}

func buildNormalizer(raw json.RawMessage) (n normalizer, byteLevel bool, err error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, false, err
	}
	switch c.Type {
	case "Sequence":
		var s struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		var list []normalizer
		for _, r := range s.Normalizers {
			sub, bl, err := buildNormalizer(r)
			if err != nil {
				return nil, false, err
			}
			byteLevel = byteLevel || bl
			if sub != nil {
				list = append(list, sub)
			}
		}
		if len(list) == 0 {
			return nil, byteLevel, nil
		}
		return sequenceNormalizer(list), byteLevel, nil
	case "NFC":
		return unicodeNormalizer(norm.NFC), false, nil
	case "NFD":
		return unicodeNormalizer(norm.NFD), false, nil
	case "NFKC":
		return unicodeNormalizer(norm.NFKC), false, nil
	case "NFKD":
		return unicodeNormalizer(norm.NFKD), false, nil
	case "Lowercase":
		return lowercaseNormalizer, false, nil
	case "Prepend":
		var s struct {
			Prepend string `json:"prepend"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		return prependNormalizer(s.Prepend), false, nil
	case "Replace":
		var s struct {
			Pattern hfPattern `json:"pattern"`
			Content string    `json:"content"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, false, fmt.Errorf("Replace: %w", err)
		}
		return replaceNormalizer(m, s.Content), false, nil
	case "Strip":
		var s struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		return stripNormalizer(s.Left, s.Right), false, nil
	case "ByteLevel":
		return nil, true, nil
	case "Precompiled":
		var s struct {
			Charsmap *string `json:"precompiled_charsmap"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		// A null or empty map normalizes nothing (Marian exports write one).
		if s.Charsmap == nil || *s.Charsmap == "" {
			return nil, false, nil
		}
		p, err := parsePrecompiled(*s.Charsmap)
		if err != nil {
			return nil, false, err
		}
		return p.normalize, false, nil
	case "BertNormalizer":
		s := struct {
			CleanText    *bool `json:"clean_text"`
			Chinese      *bool `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}{}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		def := func(b *bool) bool { return b == nil || *b }
		return bertNormalizer(def(s.CleanText), def(s.Chinese), def(s.Lowercase), s.StripAccents), false, nil
	}
	return nil, false, fmt.Errorf("unsupported normalizer type %q", c.Type)
}

var behaviors = map[string]splitBehavior{
	"Removed": behaviorRemoved, "Isolated": behaviorIsolated, "MergedWithPrevious": behaviorMergedWithPrevious,
	"MergedWithNext": behaviorMergedWithNext, "Contiguous": behaviorContiguous,
}

func parseBehavior(s string, def splitBehavior) (splitBehavior, error) {
	if s == "" {
		return def, nil
	}
	b, ok := behaviors[s]
	if !ok {
		return 0, fmt.Errorf("unknown split behavior %q", s)
	}
	return b, nil
}

func buildPreTokenizer(raw json.RawMessage) (p preTokenizer, byteLevel bool, err error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, false, err
	}
	switch c.Type {
	case "Sequence":
		var s struct {
			Pre []json.RawMessage `json:"pretokenizers"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		var seq sequencePre
		for _, r := range s.Pre {
			sub, bl, err := buildPreTokenizer(r)
			if err != nil {
				return nil, false, err
			}
			byteLevel = byteLevel || bl
			if sub != nil {
				seq = append(seq, sub)
			}
		}
		return seq, byteLevel, nil
	case "ByteLevel":
		s := struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}{}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		return byteLevelPre{addPrefixSpace: s.AddPrefixSpace, useRegex: s.UseRegex == nil || *s.UseRegex}, true, nil
	case "Split":
		var s struct {
			Pattern  hfPattern `json:"pattern"`
			Behavior string    `json:"behavior"`
			Invert   bool      `json:"invert"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, false, fmt.Errorf("Split: %w", err)
		}
		b, err := parseBehavior(s.Behavior, behaviorIsolated)
		if err != nil {
			return nil, false, err
		}
		return splitPre{m: m, behavior: b, invert: s.Invert}, false, nil
	case "Metaspace":
		var s struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
			Split          *bool  `json:"split"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		if utf8.RuneCountInString(s.Replacement) > 1 {
			return nil, false, fmt.Errorf("Metaspace replacement %q is not one character", s.Replacement)
		}
		return metaspacePre{replacement: orDefault(s.Replacement, "▁"), scheme: metaspaceScheme(s.PrependScheme, s.AddPrefixSpace), split_: s.Split == nil || *s.Split}, false, nil
	case "Digits":
		var s struct {
			Individual bool `json:"individual_digits"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		if s.Individual {
			return splitPre{m: runeClassMatcher(isDigitHF), behavior: behaviorIsolated}, false, nil
		}
		return splitPre{m: runMatcher(isDigitHF), behavior: behaviorIsolated}, false, nil
	case "Whitespace":
		return splitPre{m: whitespaceMatcher, behavior: behaviorRemoved, invert: true}, false, nil
	case "WhitespaceSplit":
		return splitPre{m: runMatcher(isS), behavior: behaviorRemoved}, false, nil
	case "BertPreTokenizer":
		return bertPre, false, nil
	case "Punctuation":
		var s struct {
			Behavior string `json:"behavior"`
		}
		if err := c.into(&s); err != nil {
			return nil, false, err
		}
		b, err := parseBehavior(s.Behavior, behaviorIsolated)
		if err != nil {
			return nil, false, err
		}
		return splitPre{m: runeClassMatcher(isPunctHF), behavior: b}, false, nil
	}
	return nil, false, fmt.Errorf("unsupported pre-tokenizer type %q", c.Type)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// metaspaceScheme reads prepend_scheme, falling back to the older
// add_prefix_space flag.
func metaspaceScheme(scheme string, addPrefix *bool) string {
	if scheme != "" {
		return scheme
	}
	if addPrefix != nil && !*addPrefix {
		return "never"
	}
	return "always"
}

func buildDecoder(raw json.RawMessage) (*decoderPipeline, error) {
	steps, err := decoderSteps(raw)
	if err != nil {
		return nil, err
	}
	if steps == nil {
		return nil, nil
	}
	return newDecoderPipeline(steps), nil
}

func decoderSteps(raw json.RawMessage) ([]decodeStep, error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var s struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := c.into(&s); err != nil {
			return nil, err
		}
		steps := []decodeStep{}
		for _, r := range s.Decoders {
			sub, err := decoderSteps(r)
			if err != nil {
				return nil, err
			}
			steps = append(steps, sub...)
		}
		return steps, nil
	case "ByteLevel":
		return []decodeStep{byteLevelDec{}}, nil
	case "ByteFallback":
		return []decodeStep{byteFallbackDec{}}, nil
	case "Fuse":
		return []decodeStep{fuseDec{}}, nil
	case "WordPiece":
		s := struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}{}
		if err := c.into(&s); err != nil {
			return nil, err
		}
		d := wordPieceDec{prefix: "##", cleanup: s.Cleanup == nil || *s.Cleanup}
		if s.Prefix != nil {
			d.prefix = *s.Prefix
		}
		return []decodeStep{d}, nil
	case "Replace":
		var s struct {
			Pattern hfPattern `json:"pattern"`
			Content string    `json:"content"`
		}
		if err := c.into(&s); err != nil {
			return nil, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return []decodeStep{replaceDec{m: m, content: s.Content}}, nil
	case "Strip":
		var s struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := c.into(&s); err != nil {
			return nil, err
		}
		r := []rune(s.Content)
		if len(r) != 1 {
			return nil, fmt.Errorf("Strip content %q is not one character", s.Content)
		}
		return []decodeStep{stripDec{content: r[0], start: s.Start, stop: s.Stop}}, nil
	case "Metaspace":
		var s struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
		}
		if err := c.into(&s); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(s.Replacement) > 1 {
			return nil, fmt.Errorf("Metaspace replacement %q is not one character", s.Replacement)
		}
		return []decodeStep{metaspaceDec{replacement: orDefault(s.Replacement, "▁"), prepend: metaspaceScheme(s.PrependScheme, s.AddPrefixSpace) != "never"}}, nil
	}
	return nil, fmt.Errorf("unsupported decoder type %q", c.Type)
}

type hfTemplateItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// buildPostProcessor returns the ids a single sequence gets before and after it.
func buildPostProcessor(raw json.RawMessage, vocab map[string]int32) (prefix, suffix []int32, err error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		var s struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := c.into(&s); err != nil {
			return nil, nil, err
		}
		for _, r := range s.Processors {
			p, q, err := buildPostProcessor(r, vocab)
			if err != nil {
				return nil, nil, err
			}
			prefix = append(p, prefix...)
			suffix = append(suffix, q...)
		}
		return prefix, suffix, nil
	case "TemplateProcessing":
		var s struct {
			Single        []hfTemplateItem `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int32 `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := c.into(&s); err != nil {
			return nil, nil, err
		}
		seen := false
		for _, it := range s.Single {
			switch {
			case it.Sequence != nil:
				seen = true
			case it.SpecialToken != nil:
				st, ok := s.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("template names unknown special token %q", it.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			}
		}
		return prefix, suffix, nil
	case "RobertaProcessing", "BertProcessing":
		var s struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		if err := c.into(&s); err != nil {
			return nil, nil, err
		}
		var sep, cls int32
		if err := json.Unmarshal(s.Sep[1], &sep); err != nil {
			return nil, nil, fmt.Errorf("%s sep: %w", c.Type, err)
		}
		if err := json.Unmarshal(s.Cls[1], &cls); err != nil {
			return nil, nil, fmt.Errorf("%s cls: %w", c.Type, err)
		}
		return []int32{cls}, []int32{sep}, nil
	}
	return nil, nil, fmt.Errorf("unsupported post-processor type %q", c.Type)
}

// buildBPE sets up the BPE model from tokenizer.json's model section.
func (t *Tokenizer) buildBPE(m *hfModel, byteLevel bool) error {
	model := &bpeModel{vocab: m.Vocab, byteLevel: byteLevel, unk: -1, fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("unk_token %q not in vocab", *m.UnkToken)
		}
		model.unk = id
		t.unk = id
	}
	for b := 0; b < 256; b++ {
		model.byteIDs[b] = -1
		key := fmt.Sprintf("<0x%02X>", b)
		if byteLevel {
			key = string(byteToRune[b])
		}
		if id, ok := m.Vocab[key]; ok {
			model.byteIDs[b] = id
		}
	}
	pairs, err := parseMerges(m.Merges)
	if err != nil {
		return err
	}
	if model.merges, err = buildMergeTable(m.Vocab, pairs); err != nil {
		return err
	}
	t.model = model
	return nil
}

// buildWordPiece sets up the WordPiece model; its unknown token is required.
func (t *Tokenizer) buildWordPiece(m *hfModel) error {
	wp := &wordPieceModel{vocab: m.Vocab, prefix: "##", maxChars: 100}
	if m.ContinuingSubwordPrefix != nil {
		wp.prefix = *m.ContinuingSubwordPrefix
	}
	if m.MaxInputCharsPerWord != nil {
		if *m.MaxInputCharsPerWord <= 0 {
			return fmt.Errorf("WordPiece max_input_chars_per_word %d is not positive", *m.MaxInputCharsPerWord)
		}
		wp.maxChars = *m.MaxInputCharsPerWord
	}
	if m.UnkToken == nil {
		return errors.New("WordPiece model has no unk_token")
	}
	id, ok := m.Vocab[*m.UnkToken]
	if !ok {
		return fmt.Errorf("unk_token %q not in vocab", *m.UnkToken)
	}
	wp.unk, t.unk = id, id
	t.wp = wp
	return nil
}
