package inference

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/grammar"
)

// byteVocab is every printable ASCII byte and newline as a token, a few
// longer tokens that straddle literal and JSON text, one special token
// (empty) and EOS last.
func byteVocab() ([][]byte, int32) {
	var toks [][]byte
	for c := byte(' '); c <= '~'; c++ {
		toks = append(toks, []byte{c})
	}
	for _, s := range []string{"\n", "<tool_call>", "<tool_call>\n{", "}\n</tool_call>", "</tool_call>", `{"name": "`, `"arguments": {`, "", ""} {
		toks = append(toks, []byte(s))
	}
	return toks, int32(len(toks) - 1)
}

// TestGrammarConstraint drives the adapter with random choices among the
// allowed tokens: the output is always prefix + a schema-valid object +
// suffix, and Finished comes exactly at its end.
func TestGrammarConstraint(t *testing.T) {
	toks, eos := byteVocab()
	vocab := grammar.NewVocab(toks, []int32{eos})
	schema := `{"type":"object","properties":{"name":{"const":"f"},"arguments":{"type":"object","properties":{"x":{"type":"integer","minimum":0,"maximum":9}},"required":["x"],"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false}`
	g, err := grammar.CompileSchema(json.RawMessage(schema))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ prefix, suffix string }{
		{"", ""},
		{"<tool_call>\n", "\n</tool_call>"},
		{"[CALL]", ""},
	}
	for _, c := range cases {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 1))
			con := &grammarConstraint{vocab: vocab, state: g.Start(), prefix: []byte(c.prefix), suffix: []byte(c.suffix)}
			if c.prefix == "" {
				con.phase = phaseValue
			}
			allowed := make([]bool, len(toks))
			var out strings.Builder
			for step := 0; ; step++ {
				if step > 2000 {
					t.Fatalf("%q seed %d: no end after 2000 tokens: %q", c.prefix, seed, out.String())
				}
				con.Mask(allowed)
				var ids []int32
				for i, ok := range allowed {
					if ok {
						ids = append(ids, int32(i))
					}
				}
				if len(ids) == 0 {
					t.Fatalf("%q seed %d: nothing allowed after %q", c.prefix, seed, out.String())
				}
				id := ids[rng.IntN(len(ids))]
				if id == eos {
					break
				}
				if err := con.Advance(id); err != nil {
					t.Fatalf("allowed token %q refused: %v", toks[id], err)
				}
				out.WriteString(string(toks[id]))
				if con.Finished() {
					break
				}
			}
			text := out.String()
			body, ok := strings.CutPrefix(text, c.prefix)
			if ok {
				body, ok = strings.CutSuffix(body, c.suffix)
			}
			var v struct {
				Name      string
				Arguments struct{ X *int }
			}
			if !ok || json.Unmarshal([]byte(body), &v) != nil || v.Name != "f" || v.Arguments.X == nil {
				t.Fatalf("%q seed %d: output %q is not prefix + call + suffix", c.prefix, seed, text)
			}
		}
	}
}

func TestGrammarConstraintRefuses(t *testing.T) {
	toks, eos := byteVocab()
	vocab := grammar.NewVocab(toks, []int32{eos})
	g, _ := grammar.CompileJSONObject()
	con := &grammarConstraint{vocab: vocab, state: g.Start(), prefix: []byte("<a>"), suffix: []byte("</a>")}
	if err := con.Advance(int32('{' - ' ')); err == nil {
		t.Error("a token outside the prefix was accepted")
	}
	if err := con.Advance(int32(len(toks) + 5)); err == nil {
		t.Error("a token id outside the vocabulary was accepted")
	}
	if err := con.Advance(eos - 1); err == nil {
		t.Error("an empty (special) token was accepted")
	}
}
