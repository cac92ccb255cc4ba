package bench

import "fmt"

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

// syntheticVocab builds a byte-level BPE vocabulary of n tokens: the 256 byte
// tokens, then every byte pair (merged from two byte tokens), then pairs
// extended by one more byte (merged from a pair and a byte), in that order,
// so each merge joins two tokens that exist and ranks after the merges that
// made them. The ids in control become control tokens "<|control_ID|>". It
// gives llama.cpp and the engine a tokenizer of the real size; the text it
// produces is meaningless, which does not matter for speed.
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
		case g < 256+256*256:
			a, b := (g-256)/256, (g-256)%256
			tokens[id] = chars[a] + chars[b]
			merges = append(merges, chars[a]+" "+chars[b])
		default:
			k := g - 256 - 256*256
			if k >= 256*256*256 {
				return nil, nil, nil, fmt.Errorf("synthetic vocabulary: %d tokens is more than it can generate", n)
			}
			a, b, c := k/65536, k/256%256, k%256
			tokens[id] = chars[a] + chars[b] + chars[c]
			merges = append(merges, chars[a]+chars[b]+" "+chars[c])
		}
		gen++
	}
	return tokens, types, merges, nil
}
