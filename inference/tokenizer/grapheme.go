package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Extended grapheme clusters (Unicode UAX #29), as far as the Precompiled
// normalizer needs them: it looks a cluster up whole only when it is shorter
// than 6 bytes, and character by character otherwise, so only short
// clusters (a base and a mark or two, CR LF, a Hangul jamo pair, a regional
// indicator pair, a Prepend mark and its base) have to be found exactly.
// Go's unicode tables give the categories; Extended_Pictographic, which only
// joins clusters far longer than 6 bytes, is approximated by the emoji blocks.

type gcbClass uint8

const (
	gcbOther gcbClass = iota
	gcbCR
	gcbLF
	gcbControl
	gcbExtend
	gcbZWJ
	gcbRI
	gcbPrepend
	gcbSpacingMark
	gcbL
	gcbV
	gcbT
	gcbLV
	gcbLVT
)

// spacingMarkExceptions are Mc characters whose Grapheme_Cluster_Break is
// not SpacingMark (UAX #29 table 2).
var spacingMarkExceptions = &unicode.RangeTable{R16: []unicode.Range16{
	{0x102B, 0x102C, 1}, {0x1038, 0x1038, 1}, {0x1062, 0x1064, 1}, {0x1067, 0x106D, 1},
	{0x1083, 0x1083, 1}, {0x1087, 0x108C, 1}, {0x108F, 0x108F, 1}, {0x109A, 0x109C, 1},
	{0x1A61, 0x1A61, 1}, {0x1A63, 0x1A64, 1}, {0xAA7B, 0xAA7B, 1}, {0xAA7D, 0xAA7D, 1},
}, R32: []unicode.Range32{{0x11720, 0x11721, 1}}}

// prependExtra are Prepend characters beyond Prepended_Concatenation_Mark.
var prependExtra = &unicode.RangeTable{R16: []unicode.Range16{{0x0D4E, 0x0D4E, 1}}, R32: []unicode.Range32{
	{0x111C2, 0x111C3, 1}, {0x1193F, 0x1193F, 2}, {0x11941, 0x11941, 1}, {0x11A3A, 0x11A3A, 1},
	{0x11A84, 0x11A89, 1}, {0x11D46, 0x11D46, 1}, {0x11F02, 0x11F02, 1},
}}

func graphemeClass(r rune) gcbClass {
	switch {
	case r == '\r':
		return gcbCR
	case r == '\n':
		return gcbLF
	case r == 0x200D:
		return gcbZWJ
	case r < 0x7F && r >= 0x20:
		return gcbOther
	case r >= 0x1F1E6 && r <= 0x1F1FF:
		return gcbRI
	case r >= 0x1F3FB && r <= 0x1F3FF: // emoji modifiers
		return gcbExtend
	case r >= 0x1100 && r <= 0x115F, r >= 0xA960 && r <= 0xA97C:
		return gcbL
	case r >= 0x1160 && r <= 0x11A7, r >= 0xD7B0 && r <= 0xD7C6:
		return gcbV
	case r >= 0x11A8 && r <= 0x11FF, r >= 0xD7CB && r <= 0xD7FB:
		return gcbT
	case r >= 0xAC00 && r <= 0xD7A3:
		if (r-0xAC00)%28 == 0 {
			return gcbLV
		}
		return gcbLVT
	case r == 0x0E33 || r == 0x0EB3:
		return gcbSpacingMark
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Other_Grapheme_Extend):
		return gcbExtend
	case unicode.In(r, unicode.Prepended_Concatenation_Mark, prependExtra):
		return gcbPrepend
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Cs):
		return gcbControl
	case unicode.Is(unicode.Mc, r) && !unicode.Is(spacingMarkExceptions, r):
		return gcbSpacingMark
	}
	return gcbOther
}

// isPictographic approximates Extended_Pictographic by the emoji and symbol
// blocks.
func isPictographic(r rune) bool {
	return r == 0xA9 || r == 0xAE || r == 0x203C || r == 0x2049 || r == 0x2122 || r == 0x2139 ||
		r >= 0x2194 && r <= 0x21AA || r >= 0x2300 && r <= 0x23FF || r >= 0x25A0 && r <= 0x27BF ||
		r >= 0x2900 && r <= 0x2BFF || r == 0x3030 || r == 0x303D || r == 0x3297 || r == 0x3299 ||
		r >= 0x1F000 && r <= 0x1FAFF && !(r >= 0x1F1E6 && r <= 0x1F1FF) && !(r >= 0x1F3FB && r <= 0x1F3FF) ||
		r >= 0x1FC00 && r <= 0x1FFFD
}

// graphemeLen returns the byte length of the first extended grapheme
// cluster of s (0 for empty s).
func graphemeLen(s string) int {
	if s == "" {
		return 0
	}
	r, n := utf8.DecodeRuneInString(s)
	prev := graphemeClass(r)
	pict := isPictographic(r)      // the cluster so far is ExtPict Extend*
	pictZWJ := false               // ... followed by ZWJ
	riCount := btoi(prev == gcbRI) // regional indicators in the current run
	for n < len(s) {
		r, sz := utf8.DecodeRuneInString(s[n:])
		cur := graphemeClass(r)
		join := false
		switch {
		case prev == gcbCR && cur == gcbLF: // GB3
			join = true
		case prev == gcbCR || prev == gcbLF || prev == gcbControl: // GB4
		case cur == gcbCR || cur == gcbLF || cur == gcbControl: // GB5
		case prev == gcbL && (cur == gcbL || cur == gcbV || cur == gcbLV || cur == gcbLVT): // GB6
			join = true
		case (prev == gcbLV || prev == gcbV) && (cur == gcbV || cur == gcbT): // GB7
			join = true
		case (prev == gcbLVT || prev == gcbT) && cur == gcbT: // GB8
			join = true
		case cur == gcbExtend || cur == gcbZWJ || cur == gcbSpacingMark: // GB9, GB9a
			join = true
		case prev == gcbPrepend: // GB9b
			join = true
		case pictZWJ && isPictographic(r): // GB11
			join = true
		case prev == gcbRI && cur == gcbRI: // GB12, GB13
			join = riCount%2 == 1
		}
		if !join {
			break
		}
		switch {
		case cur == gcbZWJ:
			pictZWJ = pict
			pict = false
		case cur == gcbExtend:
			pictZWJ = false
		default:
			pict, pictZWJ = isPictographic(r), false
		}
		if cur == gcbRI {
			riCount++
		} else {
			riCount = 0
		}
		prev = cur
		n += sz
	}
	return n
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
