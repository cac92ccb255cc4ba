package tokenizer

import "unicode/utf8"

// Byte-level BPE (GPT-2 and descendants) spells every byte as a printable code
// point so vocabularies can be stored as text: bytes 33–126, 161–172 and
// 174–255 stand for themselves and the remaining 68 bytes take U+0100 onward.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	next := rune(256)
	for b := 0; b < 256; b++ {
		if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = next
			next++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelEncode spells raw bytes in the byte-level alphabet.
func byteLevelEncode(s string) string {
	buf := make([]byte, 0, len(s)*2)
	for i := 0; i < len(s); i++ {
		buf = utf8.AppendRune(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// byteLevelDecode maps a byte-level token back to raw bytes. Like Hugging
// Face's ByteLevel decoder, a token holding any character outside the alphabet
// (an added token such as "<|im_end|>" written with a space) is kept verbatim.
func byteLevelDecode(tok string) []byte {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return []byte(tok)
		}
		out = append(out, b)
	}
	return out
}

// appendLossy appends b to dst as valid UTF-8, replacing each maximal invalid
// subsequence with U+FFFD the way Rust's String::from_utf8_lossy does (which
// Hugging Face decoders use), not one replacement per byte.
func appendLossy(dst []byte, b []byte) []byte {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			dst = append(dst, b[:n]...)
			b = b[n:]
			continue
		}
		dst = append(dst, "\uFFFD"...)
		b = b[invalidPrefixLen(b):]
	}
	return dst
}

// invalidPrefixLen returns how many bytes of b form the maximal prefix of a
// UTF-8 sequence that turned out invalid (at least 1).
func invalidPrefixLen(b []byte) int {
	need, lo, hi := leadInfo(b[0])
	if need < 0 {
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		x := b[i]
		if i == 1 && (x < lo || x > hi) || x < 0x80 || x > 0xBF {
			return i
		}
	}
	return i
}

// leadInfo returns how many continuation bytes lead byte c needs and the
// allowed range of the first one; need is -1 for a byte that cannot start a
// multi-byte character.
func leadInfo(c byte) (need int, lo, hi byte) {
	lo, hi = 0x80, 0xBF
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 1, lo, hi
	case c == 0xE0:
		return 2, 0xA0, hi
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		return 2, lo, hi
	case c == 0xED:
		return 2, lo, 0x9F
	case c == 0xF0:
		return 3, 0x90, hi
	case c >= 0xF1 && c <= 0xF3:
		return 3, lo, hi
	case c == 0xF4:
		return 3, lo, 0x8F
	}
	return -1, lo, hi
}

// incompleteTail reports how many trailing bytes of b are the valid start of
// a UTF-8 character still waiting for more bytes (0 if none).
func incompleteTail(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c >= 0x80 && c < 0xC0 {
			continue // continuation byte: look further back
		}
		need, lo, hi := leadInfo(c)
		if need < k {
			return 0 // ASCII, invalid lead, or already complete
		}
		for i := 1; i < k; i++ {
			x := b[len(b)-k+i]
			if i == 1 && (x < lo || x > hi) || x < 0x80 || x > 0xBF {
				return 0
			}
		}
		return k
	}
	return 0
}
