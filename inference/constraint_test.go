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

// TestTriggeredConstraint walks randomly through a triggered constraint:
// text is free, but every "<tool_call>" is followed by a valid call and
// its closing tag; without repeat the output ends after the first call.
func TestTriggeredConstraint(t *testing.T) {
	toks, eos := byteVocab()
	vocab := grammar.NewVocab(toks, []int32{eos})
	g, err := grammar.CompileSchema(json.RawMessage(`{"type":"object","properties":{"name":{"const":"f"}},"required":["name"],"additionalProperties":false}`))
	if err != nil {
		t.Fatal(err)
	}
	// Free text is drawn mostly from the trigger's bytes so that it gets
	// written often; "<tool_call>\n{" would run past the trigger and must
	// never be allowed in free text.
	straddle := int32(-1)
	for i, tok := range toks {
		if string(tok) == "<tool_call>\n{" {
			straddle = int32(i)
		}
	}
	free := []string{"<tool_call>", "<", "t", "o", "l", "_", "c", "a", ">", " ", "x"}
	calls := 0
	for _, repeat := range []bool{false, true} {
		for seed := range uint64(40) {
			rng := rand.New(rand.NewPCG(seed, 2))
			con := &grammarConstraint{vocab: vocab, grammar: g, prefix: []byte("\n"), suffix: []byte("\n</tool_call>"), trigger: []byte("<tool_call>"), repeat: repeat, phase: phaseFree}
			con.triggerEnds = tokensWith(vocab, '>')
			allowed := make([]bool, len(toks))
			var out strings.Builder
			for step := 0; step < 400 && !con.Finished(); step++ {
				con.Mask(allowed)
				if con.phase == phaseFree && allowed[straddle] {
					t.Fatalf("a token running past the trigger is allowed after %q", out.String())
				}
				var ids []int32
				for i, ok := range allowed {
					if ok && int32(i) != eos {
						ids = append(ids, int32(i))
					}
				}
				var id int32
				if con.phase == phaseFree {
					// Prefer free tokens that build the trigger.
					want := free[rng.IntN(len(free))]
					for _, c := range ids {
						if string(toks[c]) == want {
							id = c
						}
					}
				} else {
					id = ids[rng.IntN(len(ids))]
				}
				if err := con.Advance(id); err != nil {
					t.Fatalf("allowed token %q refused after %q: %v", toks[id], out.String(), err)
				}
				out.WriteString(string(toks[id]))
			}
			text := out.String()
			parts := strings.Split(text, "<tool_call>")
			for i, p := range parts[1:] {
				body, rest, closed := strings.Cut(p, "\n</tool_call>")
				if !closed {
					if i == len(parts)-2 {
						continue // the walk stopped inside the last call
					}
					t.Fatalf("call %d of %q is not closed", i, text)
				}
				calls++
				var call struct{ Name string }
				value, ok := strings.CutPrefix(body, "\n")
				if !ok || json.Unmarshal([]byte(value), &call) != nil || call.Name != "f" {
					t.Fatalf("call body %q in %q", body, text)
				}
				if !repeat && rest != "" {
					t.Fatalf("text %q after the single call", rest)
				}
			}
		}
	}
	if calls == 0 {
		t.Fatal("no walk wrote a call")
	}
}
