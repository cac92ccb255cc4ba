package bench

import (
	"fmt"
	"unicode/utf8"
)

// Token types of tokenizer.ggml.token_type.
const (
	tokenNormal  int32 = 1
	tokenControl int32 = 3
)

// byteChars is GPT-2's byte-level alphabet: printable Latin-1 bytes stand for
// themselves, the others for the code points from U+0100 on, so every token
// is printable text without spaces.
func byteChars() [256]string {
	var out [256]string
	next := 256
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(next))
			next++
		}
	}
	return out
}

// printableASCII are the bytes generated tokens are made of (space to '~'),
// so whatever a model samples decodes to valid UTF-8 text, except the byte
// tokens of other bytes, which bannedTokens lists.
const printableASCII = 0x7F - 0x20

// syntheticVocab builds a byte-level BPE vocabulary of n tokens: the 256 byte
// tokens, then every pair of printable ASCII bytes (merged from two byte
// tokens), then such pairs extended by one more printable byte (merged from
// a pair and a byte), in that order, so each merge joins two tokens that
// exist and ranks after the merges that made them. The ids in control become
// control tokens "<|control_ID|>". It gives llama.cpp and the engine a
// tokenizer of the real size; the text it produces is meaningless, which
// does not matter for speed.
func syntheticVocab(n int, control []int) (tokens []string, types []int32, merges []string, err error) {
	isControl := map[int]bool{}
	for _, id := range control {
		if id < 0 || id >= n {
			return nil, nil, nil, fmt.Errorf("synthetic vocabulary: control token %d outside %d tokens", id, n)
		}
		isControl[id] = true
	}
	if n-len(isControl) < 256 {
		return nil, nil, nil, fmt.Errorf("synthetic vocabulary: %d tokens cannot hold the 256 byte tokens", n)
	}
	chars := byteChars()
	p := func(i int) string { return chars[0x20+i] }
	const pairs = printableASCII * printableASCII
	tokens, types = make([]string, n), make([]int32, n)
	gen := 0 // index into the generated sequence: bytes, pairs, triples
	for id := 0; id < n; id++ {
		if isControl[id] {
			tokens[id], types[id] = fmt.Sprintf("<|control_%d|>", id), tokenControl
			continue
		}
		types[id] = tokenNormal
		switch g := gen; {
		case g < 256:
			tokens[id] = chars[g]
		case g < 256+pairs:
			a, b := (g-256)/printableASCII, (g-256)%printableASCII
			tokens[id] = p(a) + p(b)
			merges = append(merges, p(a)+" "+p(b))
		default:
			k := g - 256 - pairs
			if k >= pairs*printableASCII {
				return nil, nil, nil, fmt.Errorf("synthetic vocabulary: %d tokens is more than it can generate", n)
			}
			a, b, c := k/pairs, k/printableASCII%printableASCII, k%printableASCII
			tokens[id] = p(a) + p(b) + p(c)
			merges = append(merges, p(a)+p(b)+" "+p(c))
		}
		gen++
	}
	return tokens, types, merges, nil
}

// bannedTokens lists the normal tokens of a byte-level BPE vocabulary whose
// bytes are not valid UTF-8 text without control characters: llama-server
// refuses to return such output, so its benchmark requests forbid them.
func bannedTokens(tokens []string, types []int32) []int {
	var inverse = map[rune]byte{}
	for b, c := range byteChars() {
		inverse[[]rune(c)[0]] = byte(b)
	}
	var out []int
	for id, tok := range tokens {
		if id < len(types) && types[id] != tokenNormal {
			continue
		}
		var raw []byte
		ok := true
		for _, r := range tok {
			b, known := inverse[r]
			if !known {
				raw = nil
				break // not byte-level text: left as it is
			}
			if b < 0x20 && b != '\n' && b != '\t' {
				ok = false
			}
			raw = append(raw, b)
		}
		if raw != nil && (!ok || !utf8.Valid(raw)) {
			out = append(out, id)
		}
	}
	return out
}
