package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/impetusllm/impetus/inference/testutil"
)

// byteLevelDecoder maps the printable stand-in runes of byte-level BPE
// vocabularies (GPT-2 style) back to bytes: printable Latin-1 bytes stand for
// themselves and the other 68 bytes for U+0100 onwards, in byte order.
func byteLevelDecoder() map[rune]byte {
	m := map[rune]byte{}
	next := rune(256)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[rune(b)] = byte(b)
		} else {
			m[next] = byte(b)
			next++
		}
	}
	return m
}

var (
	llamaOnce  sync.Once
	llamaToks  [][]byte
	llamaVocab *Vocab
	llamaErr   error
)

const llamaEOS = 128009 // <|eot_id|>

// llama3Vocab loads the Llama 3.2 vocabulary (128000 byte-level BPE tokens
// plus 256 special tokens with empty bytes) from the shared assets.
func llama3Vocab(tb testing.TB) ([][]byte, *Vocab) {
	tb.Helper()
	path := testutil.SharedPath(tb, "assets", "tokenizers", "llama3.2-encoder.json")
	llamaOnce.Do(func() {
		raw, err := os.ReadFile(path)
		if err != nil {
			llamaErr = err
			return
		}
		var enc map[string]int
		if llamaErr = json.Unmarshal(raw, &enc); llamaErr != nil {
			return
		}
		dec := byteLevelDecoder()
		llamaToks = make([][]byte, 128256)
		for s, id := range enc {
			var b []byte
			for _, r := range s {
				b = append(b, dec[r])
			}
			llamaToks[id] = b
		}
		llamaVocab = NewVocab(llamaToks, []int32{llamaEOS})
	})
	if llamaErr != nil {
		tb.Fatalf("load llama3 vocab: %v", llamaErr)
	}
	return llamaToks, llamaVocab
}

// TestRealVocabWalks drives the grammar with a real 128k vocabulary: on
// sampled steps the mask is checked token by token against Advance, and every
// finished output must parse and validate.
func TestRealVocabWalks(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	toks, v := llama3Vocab(t)
	index := map[string]int32{}
	for i, tok := range toks {
		if len(tok) > 0 {
			if _, dup := index[string(tok)]; !dup {
				index[string(tok)] = int32(i)
			}
		}
	}
	for _, tc := range testSchemas[:5] {
		t.Run(tc.name, func(t *testing.T) {
			g := compileTest(t, tc.schema)
			var schema any = map[string]any{"type": "object"}
			if tc.schema != "" {
				json.Unmarshal([]byte(tc.schema), &schema)
			}
			r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			allowed := make([]bool, v.Size())
			brute := make([]bool, v.Size())
			var scratch State
			for walk := range 4 {
				s := g.Start()
				var out []byte
				for steps := 0; ; steps++ {
					if steps > 400 {
						t.Fatalf("walk did not finish: %q", out)
					}
					s.Mask(v, allowed)
					if steps%5 == 0 && walk == 0 {
						for i, tok := range toks {
							switch {
							case i == llamaEOS:
								brute[i] = s.Done()
							case len(tok) == 0:
								brute[i] = false
							default:
								brute[i] = advancesFrom(&scratch, s, tok)
							}
							if brute[i] != allowed[i] {
								t.Fatalf("after %q token %d %q: Mask %v, Advance %v", out, i, tok, allowed[i], brute[i])
							}
						}
					}
					var choices []int32
					for i, ok := range allowed {
						if ok {
							choices = append(choices, int32(i))
						}
					}
					if len(choices) == 0 {
						t.Fatalf("dead end after %q", out)
					}
					var tok int32
					if steps < 25 {
						tok = choices[r.IntN(len(choices))]
					} else {
						if allowed[llamaEOS] {
							break
						}
						tok = finishingToken(s, toks, allowed, index, llamaEOS)
					}
					if tok == llamaEOS {
						break
					}
					if err := s.Advance(toks[tok]); err != nil {
						t.Fatal(err)
					}
					out = append(out, toks[tok]...)
				}
				if !utf8.Valid(out) {
					t.Fatalf("invalid UTF-8: %q", out)
				}
				dec := json.NewDecoder(bytes.NewReader(out))
				dec.UseNumber()
				var val any
				if err := dec.Decode(&val); err != nil {
					t.Fatalf("%q does not parse: %v", out, err)
				}
				if err := validate(val, schema, schema); err != nil {
					t.Fatalf("%q does not validate: %v", out, err)
				}
			}
		})
	}
}

func BenchmarkMaskLlama3(b *testing.B) {
	_, v := llama3Vocab(b)
	var enum, props []string
	for i := range 500 {
		enum = append(enum, fmt.Sprintf(`"value_%d"`, i))
	}
	for i := range 40 {
		props = append(props, fmt.Sprintf(`"field_%d":{"type":"integer"}`, i))
	}
	bigEnum := `{"enum":[` + strings.Join(enum, ",") + `]}`
	manyProps := `{"type":"object","properties":{` + strings.Join(props, ",") + `}}`
	person := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
		"bio":{"type":"string","maxLength":200}},"required":["name","age","bio"],"additionalProperties":false}`
	for _, bc := range []struct {
		name, schema, prefix string
	}{
		{"object start", "", ""},
		{"any value after colon", "", `{"a": `},
		{"free key", "", `{"a": 1, "`},
		{"inside string", "", `{"a": "Hello wor`},
		{"inside string mid-UTF-8", "", "{\"a\": \"caf\xc3"},
		{"inside number", "", `{"a": 12`},
		{"schema key", person, `{"name": "Ann", `},
		{"schema integer", person, `{"name": "Ann", "age": `},
		{"bounded string", person, `{"name": "Ann", "age": 3, "bio": "Likes`},
		{"enum of 500 at start", bigEnum, ``},
		{"enum of 500 after quote", bigEnum, `"`},
		{"40 optional keys", manyProps, `{`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var g *Grammar
			var err error
			if bc.schema == "" {
				g, err = CompileJSONObject()
			} else {
				g, err = CompileSchema(json.RawMessage(bc.schema))
			}
			if err != nil {
				b.Fatal(err)
			}
			s := g.Start()
			if err := s.Advance([]byte(bc.prefix)); bc.prefix != "" && err != nil {
				b.Fatal(err)
			}
			allowed := make([]bool, v.Size())
			for b.Loop() {
				s.Mask(v, allowed)
			}
			n := 0
			for _, ok := range allowed {
				if ok {
					n++
				}
			}
			b.ReportMetric(float64(n), "allowed")
		})
	}
}
