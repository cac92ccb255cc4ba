package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// precompiledMap is SentencePiece's compiled normalization rules as
// tokenizer.json carries them (normalizer type "Precompiled", the
// base64 precompiled_charsmap): a little-endian uint32 byte size of a
// darts-clone double-array trie, the trie's uint32 units, then the
// NUL-terminated replacement strings the trie's values point into.
type precompiledMap struct {
	units []uint32
	pool  string
	// ascii[c] is the rule of the one-byte text c, for the fast path of
	// ASCII characters followed by ASCII (each its own cluster).
	ascii    [128]string
	hasASCII [128]bool
}

func parsePrecompiled(b64 string) (*precompiledMap, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("precompiled_charsmap is not base64: %w", err)
	}
	if len(raw) < 4 {
		return nil, fmt.Errorf("precompiled_charsmap of %d bytes is too short", len(raw))
	}
	size := binary.LittleEndian.Uint32(raw)
	if size%4 != 0 || uint64(size) > uint64(len(raw)-4) {
		return nil, fmt.Errorf("precompiled_charsmap trie size %d does not fit its %d bytes", size, len(raw))
	}
	p := &precompiledMap{units: make([]uint32, size/4), pool: string(raw[4+size:])}
	for i := range p.units {
		p.units[i] = binary.LittleEndian.Uint32(raw[4+4*i:])
	}
	if !utf8.ValidString(p.pool) {
		return nil, errors.New("precompiled_charsmap replacements are not valid UTF-8")
	}
	for c := 1; c < 128; c++ {
		p.ascii[c], p.hasASCII[c] = p.transform(string(rune(c)))
	}
	return p, nil
}

// Darts-clone unit fields.
func dartsHasLeaf(u uint32) bool  { return u>>8&1 == 1 }
func dartsValue(u uint32) uint32  { return u & (1<<31 - 1) }
func dartsLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func dartsOffset(u uint32) uint32 { return u >> 10 << ((u & (1 << 9)) >> 6) }

// transform returns the replacement for the shortest trie key that prefixes
// chunk. Hugging Face's normalizer takes that first match and replaces the
// whole chunk by it, and so do we, to give the same ids.
func (p *precompiledMap) transform(chunk string) (string, bool) {
	if len(p.units) == 0 {
		return "", false
	}
	pos := dartsOffset(p.units[0])
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if c == 0 {
			return "", false
		}
		pos ^= uint32(c)
		if pos >= uint32(len(p.units)) {
			return "", false
		}
		u := p.units[pos]
		if dartsLabel(u) != uint32(c) {
			return "", false
		}
		pos ^= dartsOffset(u)
		if dartsHasLeaf(u) {
			if pos >= uint32(len(p.units)) {
				return "", false
			}
			v := dartsValue(p.units[pos])
			if v > uint32(len(p.pool)) {
				return "", false
			}
			s := p.pool[v:]
			if k := strings.IndexByte(s, 0); k >= 0 {
				s = s[:k]
			}
			return s, true
		}
	}
	return "", false
}

// normalize applies the rules per grapheme cluster: a cluster under 6
// bytes is looked up whole, and otherwise (or when it has no rule) each of
// its characters is.
func (p *precompiledMap) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		// An ASCII character followed by ASCII other than CR LF is a
		// cluster of its own.
		if c := s[i]; c < 0x80 && c != 0 && (i+1 == len(s) || s[i+1] < 0x80 && !(c == '\r' && s[i+1] == '\n')) {
			if p.hasASCII[c] {
				b.WriteString(p.ascii[c])
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		n := graphemeLen(s[i:])
		g := s[i : i+n]
		i += n
		if n < 6 {
			if v, ok := p.transform(g); ok {
				b.WriteString(v)
				continue
			}
		}
		for j := 0; j < len(g); {
			_, sz := utf8.DecodeRuneInString(g[j:])
			part := g[j : j+sz]
			if v, ok := p.transform(part); ok {
				b.WriteString(v)
			} else {
				b.WriteString(part)
			}
			j += sz
		}
	}
	return b.String()
}
