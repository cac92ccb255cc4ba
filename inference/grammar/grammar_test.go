package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// testVocab is a synthetic vocabulary: every printable ASCII byte, newline and
// tab, UTF-8 characters whole and split into single bytes, and multi-byte
// chunks of the kind BPE produces around JSON. Token 0 is a special token
// (empty bytes) and token 1 is EOS.
func testVocab() (*Vocab, [][]byte) {
	toks := [][]byte{nil, nil}
	for c := 0x20; c < 0x7f; c++ {
		toks = append(toks, []byte{byte(c)})
	}
	toks = append(toks, []byte("\n"), []byte("\t"), []byte("\r"))
	for _, s := range []string{"é", "日本", "→", "😀"} {
		toks = append(toks, []byte(s))
		for i := range len(s) {
			toks = append(toks, []byte{s[i]})
		}
	}
	toks = append(toks, []byte{0xff}, []byte{0xc0, 0x80}, []byte{0xed, 0xa0, 0x80}) // never valid UTF-8
	for _, s := range []string{
		`{"`, `":`, `": `, `",`, `", "`, `"}`, `"]`, `"}}`, `},`, `}]`, `[]`, `{}`, `[{`, `[[`, `":"`, `","`,
		`true`, `false`, `null`, `nul`, `tr`, `12`, `0.5`, `-1`, `e+`, `E-3`, `00`, `1e5`,
		"\n  ", "  ", "\n", "\n    ", " \n", `\"`, `\n`, `\u00`, `\u12ab`, `\x`,
		`name`, `age`, `tags`, `ok`, `kind`, `"kind`, `"kind":"a"`, `"x`, `"y":`, `fixed`, `"fixed"`,
		`hello`, ` world`, `"v": `, `"kids":[`, `yes`, `a`, `"a"`, `""`, `"b"`,
	} {
		toks = append(toks, []byte(s))
	}
	return NewVocab(toks, []int32{1}), toks
}

const (
	specialID = 0
	eosID     = 1
)

var testSchemas = []struct {
	name   string
	schema string // "" = json_object mode
}{
	{"json_object", ""},
	{"strict person", `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
		"tags":{"type":"array","items":{"type":"string"},"maxItems":3},"ok":{"type":"boolean"}},
		"required":["name","age","tags","ok"],"additionalProperties":false}`},
	{"optional enum nullable", `{"type":"object","properties":{"a":{"enum":["x","y",1,12,null]},
		"b":{"type":["number","null"]},"c":{"const":"fixed"},"d":{"type":"string","minLength":2,"maxLength":4},
		"e":{"type":"object"}},"required":["c"]}`},
	{"anyOf objects", `{"anyOf":[
		{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},
		{"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind","y"],"additionalProperties":false}]}`},
	{"recursive tree", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
		"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"]}},"$ref":"#/$defs/node"}`},
	{"root number", `{"type":"number"}`},
	{"root integer array", `{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":4}`},
	{"map of integers", `{"type":"object","additionalProperties":{"type":"integer"}}`},
	{"empty object only", `{"type":"object","additionalProperties":false}`},
	{"any value", `{}`},
	{"string with escapes", `{"type":"string","maxLength":6}`},
	{"bounded numbers", `{"type":"object","properties":{"i":{"type":"integer","minimum":-5,"maximum":120},
		"p":{"type":"number","minimum":0,"maximum":1},"x":{"type":"number","exclusiveMinimum":-0.25,"exclusiveMaximum":1000},
		"big":{"type":"integer","minimum":1000}},"required":["i","p","x","big"],"additionalProperties":false}`},
	{"enum with shared prefixes", `{"type":"array","items":{"enum":["a","ab","abc","b","ba",1,10,100,1.5,true,false,null,"日本"]},"maxItems":3}`},
	{"root bounded integer", `{"type":"integer","minimum":10,"maximum":12}`},
	{"pydantic style", `{"$defs":{"Pet":{"type":"object","title":"Pet","properties":{"kind":{"type":"string","enum":["cat","dog"]},
		"legs":{"type":"integer"}},"required":["kind"]}},"type":"object","properties":{
		"pet":{"allOf":[{"$ref":"#/$defs/Pet"}],"description":"the pet"},
		"tags":{"type":"array","items":{"type":"string"},"uniqueItems":false,"minItems":1,"maxItems":2}},"required":["pet","tags"]}`},
}

func compileTest(t *testing.T, schema string) *Grammar {
	t.Helper()
	var g *Grammar
	var err error
	if schema == "" {
		g, err = CompileJSONObject()
	} else {
		g, err = CompileSchema(json.RawMessage(schema))
	}
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return g
}

// bruteMask decides each token by cloning the state and advancing it, the
// obviously-correct (slow) definition Mask must agree with.
func bruteMask(s *State, toks [][]byte, allowed []bool) {
	var scratch State
	for i, tok := range toks {
		switch {
		case i == eosID:
			allowed[i] = s.Done()
		case len(tok) == 0:
			allowed[i] = false
		default:
			allowed[i] = advancesFrom(&scratch, s, tok)
		}
	}
}

// advancesFrom reports whether tok can follow s, using scratch (reused so
// that checking a whole vocabulary does not allocate a state per token).
func advancesFrom(scratch, s *State, tok []byte) bool {
	scratch.cur.copyFrom(&s.cur)
	return scratch.tryAdvance(tok) < 0
}

// preferred tokens break ties when steering a walk to an end.
var preferred = []string{"}", "]", `"`, "0", "null", `""`, "{}", "[]", ":", ","}

// finishingToken steers a walk that has run long enough towards its end: EOS
// when allowed, else the allowed token leaving the shallowest stack (closing
// strings, objects and arrays), preferring short structural tokens on ties.
func finishingToken(s *State, toks [][]byte, allowed []bool, index map[string]int32, eos int32) int32 {
	if allowed[eos] {
		return eos
	}
	depth := func(tok int32) int {
		c := s.Clone()
		if c.Advance(toks[tok]) != nil {
			return math.MaxInt
		}
		d := math.MaxInt
		for i := range c.cur.len() {
			d = min(d, len(c.cur.stack(i)))
		}
		return d
	}
	best, bestDepth := int32(-1), math.MaxInt
	consider := func(id int32) {
		if id == eos || !allowed[id] {
			return
		}
		if d := depth(id); d < bestDepth {
			best, bestDepth = id, d
		}
	}
	for _, p := range preferred {
		consider(index[p])
	}
	for i, ok := range allowed {
		if ok && len(toks[i]) == 1 {
			consider(int32(i))
		}
	}
	if best >= 0 {
		return best
	}
	for i, ok := range allowed {
		if ok {
			consider(int32(i))
		}
	}
	return best
}

func TestRandomWalks(t *testing.T) {
	v, toks := testVocab()
	index := map[string]int32{}
	for i, tok := range toks {
		if len(tok) > 0 {
			index[string(tok)] = int32(i)
		}
	}
	for _, tc := range testSchemas {
		t.Run(tc.name, func(t *testing.T) {
			g := compileTest(t, tc.schema)
			var schema any = map[string]any{"type": "object"}
			if tc.schema != "" {
				if err := json.Unmarshal([]byte(tc.schema), &schema); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			allowed := make([]bool, v.Size())
			brute := make([]bool, v.Size())
			var choices []int32
			for walk := range 150 {
				s := g.Start()
				var out []byte
				wander := r.IntN(80)
				for steps := 0; ; steps++ {
					if steps > 3000 {
						t.Fatalf("walk %d did not finish: %q", walk, out)
					}
					s.Mask(v, allowed)
					if walk < 20 { // the brute-force comparison is slow; check the first walks
						bruteMask(s, toks, brute)
						for i := range allowed {
							if allowed[i] != brute[i] {
								t.Fatalf("after %q token %q: Mask says %v, advancing says %v", out, toks[i], allowed[i], brute[i])
							}
						}
					}
					if allowed[specialID] {
						t.Fatal("special token allowed")
					}
					choices = choices[:0]
					for i, ok := range allowed {
						if ok {
							choices = append(choices, int32(i))
						}
					}
					if len(choices) == 0 {
						t.Fatalf("dead end after %q", out)
					}
					tok := choices[r.IntN(len(choices))]
					if steps > wander {
						tok = finishingToken(s, toks, allowed, index, eosID)
					}
					if tok == eosID {
						break
					}
					if err := s.Advance(toks[tok]); err != nil {
						t.Fatalf("advance with an allowed token: %v", err)
					}
					out = append(out, toks[tok]...)
				}
				if !utf8.Valid(out) {
					t.Fatalf("output is not valid UTF-8: %q", out)
				}
				dec := json.NewDecoder(bytes.NewReader(out))
				dec.UseNumber()
				var val any
				if err := dec.Decode(&val); err != nil {
					t.Fatalf("output %q does not parse: %v", out, err)
				}
				if dec.More() {
					t.Fatalf("output %q has trailing data", out)
				}
				if err := validate(val, schema, schema); err != nil {
					t.Fatalf("output %q does not validate: %v", out, err)
				}
				if walk < 3 {
					t.Logf("walk %d: %q", walk, out)
				}
			}
		})
	}
}

// validate checks v against the schema subset the compiler supports.
func validate(v any, schema any, root any) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("false schema")
		}
		return nil
	}
	s := schema.(map[string]any)
	if ref, ok := s["$ref"].(string); ok {
		target := root
		if ref != "#" {
			for _, part := range strings.Split(ref[2:], "/") {
				part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
				switch tt := target.(type) {
				case map[string]any:
					target = tt[part]
				case []any:
					i, _ := strconv.Atoi(part)
					target = tt[i]
				}
			}
		}
		return validate(v, target, root)
	}
	for _, sub := range asList(s["allOf"]) {
		if err := validate(v, sub, root); err != nil {
			return fmt.Errorf("allOf: %w", err)
		}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		for _, a := range alts {
			if validate(v, a, root) == nil {
				return nil
			}
		}
		return fmt.Errorf("%v matches no anyOf alternative", v)
	}
	if c, ok := s["const"]; ok && !jsonEqual(v, c) {
		return fmt.Errorf("%v is not const %v", v, c)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || jsonEqual(v, x)
		}
		if !found {
			return fmt.Errorf("%v not in enum", v)
		}
	}
	if t, ok := s["type"]; ok {
		types := []any{t}
		if list, ok := t.([]any); ok {
			types = list
		}
		match := false
		for _, tt := range types {
			match = match || hasType(toOrdered(v), tt.(string))
		}
		if !match {
			return fmt.Errorf("%v is not of type %v", v, t)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("missing required %q", r)
			}
		}
		for k, val := range x {
			if ps, ok := props[k]; ok {
				if err := validate(val, ps, root); err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := validate(val, ap, root); err != nil {
					return fmt.Errorf("additional %s: %w", k, err)
				}
			}
		}
	case []any:
		if n, ok := s["minItems"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%d items < minItems %v", len(x), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(x)) > n {
			return fmt.Errorf("%d items > maxItems %v", len(x), n)
		}
		if items, ok := s["items"]; ok {
			for _, it := range x {
				if err := validate(it, items, root); err != nil {
					return err
				}
			}
		}
	case json.Number:
		f, _ := x.Float64()
		if m, ok := s["minimum"].(float64); ok && f < m {
			return fmt.Errorf("%v < minimum %v", x, m)
		}
		if m, ok := s["maximum"].(float64); ok && f > m {
			return fmt.Errorf("%v > maximum %v", x, m)
		}
		if m, ok := s["exclusiveMinimum"].(float64); ok && f <= m {
			return fmt.Errorf("%v <= exclusiveMinimum %v", x, m)
		}
		if m, ok := s["exclusiveMaximum"].(float64); ok && f >= m {
			return fmt.Errorf("%v >= exclusiveMaximum %v", x, m)
		}
	case string:
		n := float64(utf8.RuneCountInString(x))
		if m, ok := s["minLength"].(float64); ok && n < m {
			return fmt.Errorf("%q shorter than %v", x, m)
		}
		if m, ok := s["maxLength"].(float64); ok && n > m {
			return fmt.Errorf("%q longer than %v", x, m)
		}
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// toOrdered converts a decoded value to the compiler's representation for hasType.
func toOrdered(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return &object{vals: map[string]any{}}
	case float64:
		return json.Number(fmt.Sprint(x))
	default:
		return x
	}
}

func jsonEqual(a, b any) bool {
	num := func(x any) (float64, bool) {
		switch n := x.(type) {
		case json.Number:
			f, err := n.Float64()
			return f, err == nil
		case float64:
			return n, true
		}
		return 0, false
	}
	if fa, ok := num(a); ok {
		fb, ok := num(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func TestAdvanceRejects(t *testing.T) {
	g := compileTest(t, `{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}`)
	for _, tc := range []struct {
		prefix, bad string
	}{
		{"", " "},                      // no leading whitespace
		{"", "["},                      // wrong type
		{`{`, `}`},                     // required property missing
		{`{"`, `m`},                    // undeclared key
		{`{"n":`, `1.5`},               // integer has no fraction
		{`{"n":0`, `1`},                // no leading zeros
		{`{"n":1}`, ` `},               // nothing after the value
		{`{"n": `, ` `},                // one space only
		{`{"n":`, "\t"},                // tabs refused
		{`{"n":`, "\n"},                // no newline after ':'
		{`{"n"`, ` `},                  // no whitespace before ':'
		{`{`, "\n     "},               // 4 spaces per open container
		{`{`, "\n\n"},                  // no blank lines
		{`{"n":1`, `,`},                // no more properties to come
		{`{"n":12345678901234`, `567`}, // digit cap
	} {
		s := g.Start()
		if err := s.Advance([]byte(tc.prefix)); tc.prefix != "" && err != nil {
			t.Fatalf("prefix %q: %v", tc.prefix, err)
		}
		before := s.Clone()
		if err := s.Advance([]byte(tc.bad)); err == nil {
			t.Errorf("%q after %q accepted", tc.bad, tc.prefix)
		}
		// A failed Advance leaves the state as it was.
		if !reflect.DeepEqual(s.cur.frames, before.cur.frames) || !reflect.DeepEqual(s.cur.ends, before.cur.ends) {
			t.Errorf("failed Advance of %q changed the state", tc.bad)
		}
	}
}

func TestDoneAndFinished(t *testing.T) {
	for _, tc := range []struct {
		schema, text   string
		done, finished bool
	}{
		{`{"type":"number"}`, "12", true, false},
		{`{"type":"number"}`, "12.", false, false},
		{`{"type":"number"}`, "-", false, false},
		{`{"type":"object"}`, `{"a":1`, false, false},
		{`{"type":"object"}`, `{"a":1}`, true, true},
		{`{"enum":[1,12]}`, `1`, true, false},
		{`{"enum":[1,12]}`, `12`, true, true},
		{`{"type":"string"}`, `"x"`, true, true},
	} {
		g := compileTest(t, tc.schema)
		s := g.Start()
		if err := s.Advance([]byte(tc.text)); err != nil {
			t.Fatalf("%s %q: %v", tc.schema, tc.text, err)
		}
		if s.Done() != tc.done || s.Finished() != tc.finished {
			t.Errorf("%s %q: done %v finished %v, want %v %v", tc.schema, tc.text, s.Done(), s.Finished(), tc.done, tc.finished)
		}
	}
}

func TestNumberBounds(t *testing.T) {
	const (
		ints  = `{"type":"integer","minimum":-5,"maximum":120}`
		unit  = `{"type":"number","minimum":0,"maximum":1}`
		open  = `{"type":"number","exclusiveMinimum":-0.25,"exclusiveMaximum":1000}`
		large = `{"type":"integer","minimum":1000}`
	)
	for _, tc := range []struct {
		schema, text string
		ok           bool // accepted as a complete value
	}{
		{ints, "120", true}, {ints, "121", false}, {ints, "-5", true}, {ints, "-6", false},
		{ints, "-0", true}, {ints, "0", true}, {ints, "1000", false}, {ints, "99", true}, {ints, "1.0", false},
		{unit, "1", true}, {unit, "1.0", true}, {unit, "1.00000001", false}, {unit, "0.99999999", true},
		{unit, "0.999999999", false}, {unit, "-0", true}, {unit, "-0.1", false}, {unit, "1e0", false}, {unit, "2", false},
		{open, "-0.25", false}, {open, "-0.24999999", true}, {open, "1000", false}, {open, "999.99999999", true}, {open, "-1", false},
		{large, "999", false}, {large, "1000", true}, {large, "9999999999999999", true}, {large, "-1000", false},
	} {
		g := compileTest(t, tc.schema)
		s := g.Start()
		err := s.Advance([]byte(tc.text))
		if ok := err == nil && s.Done(); ok != tc.ok {
			t.Errorf("%s %q: accepted=%v, want %v (%v)", tc.schema, tc.text, ok, tc.ok, err)
		}
	}
	for _, tc := range []struct{ schema, want string }{
		{`{"type":"integer","minimum":3,"maximum":2}`, "no value"},
		{`{"type":"integer","minimum":2.5,"maximum":2.9}`, "no value"},
		{`{"type":"integer","exclusiveMinimum":true}`, "must be a number"},
		{`{"type":"number","minimum":1e20}`, "no value"},
	} {
		if _, err := CompileSchema(json.RawMessage(tc.schema)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.schema, err, tc.want)
		}
	}
}

func TestEnum(t *testing.T) {
	g := compileTest(t, `{"type":"array","items":{"enum":["a","ab","abc",1,10,100,1.5,true,null]}}`)
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{`["ab"]`, true}, {`["abc","a"]`, true}, {`[10,1,100]`, true}, {`[1.5]`, true}, {`[true, null]`, true},
		{`["abcd"]`, false}, {`["b"]`, false}, {`[1000]`, false}, {`[15]`, false}, {`[1.]`, false}, {`[false]`, false},
		{`[nul]`, false},
	} {
		s := g.Start()
		err := s.Advance([]byte(tc.text))
		if ok := err == nil && s.Done(); ok != tc.ok {
			t.Errorf("%s: accepted=%v, want %v (%v)", tc.text, ok, tc.ok, err)
		}
	}
}

func TestPropertyOrder(t *testing.T) {
	g := compileTest(t, `{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"integer"}},"required":["a"]}`)
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{`{"b":1,"a":2}`, true},
		{`{"a":2}`, true},
		{`{"a":2,"b":1}`, false}, // schema order
		{`{"b":1}`, false},       // a is required
	} {
		s := g.Start()
		err := s.Advance([]byte(tc.text))
		if ok := err == nil && s.Done(); ok != tc.ok {
			t.Errorf("%s: accepted=%v, want %v (%v)", tc.text, ok, tc.ok, err)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		schema, want string
	}{
		{`{"type":"string","pattern":"^a"}`, `unsupported JSON Schema keyword "pattern" at the schema root`},
		{`{"type":"object","properties":{"x":{"type":"number","multipleOf":3}}}`, `"multipleOf" at /properties/x`},
		{`{"oneOf":[{"type":"string"}]}`, `"oneOf"`},
		{`{"allOf":[{"type":"string"},{"maxLength":3}]}`, `single subschema`},
		{`{"type":"array","uniqueItems":true}`, `uniqueItems`},
		{`{"type":"strin"}`, `unknown type`},
		{`{"type":[]}`, `non-empty array`},
		{`{"enum":[]}`, `enum`},
		{`{"type":"string","enum":[1,2]}`, `no value`},
		{`{"$ref":"#/$defs/missing"}`, `points to nothing`},
		{`{"$ref":"http://example.com/s"}`, `not local`},
		{`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, `refers to itself`},
		{`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"}`, `never reaches a value`},
		{`{"type":"array","minItems":3,"maxItems":2}`, `minItems`},
		{`{"type":"string","minLength":-1}`, `non-negative integer`},
		{`{"type":"object","required":["x"],"additionalProperties":false}`, `not in properties`},
		{`{"type":"object","properties":[]}`, `properties`},
		{`false`, `accepts no value`},
		{`[1]`, `must be an object`},
		{`{"type":"string"`, `not valid JSON`},
		{`{"a":1,"a":2}`, `duplicate key`},
		{`{"type":"string"} x`, `trailing data`},
		{strings.Repeat(`{"items":`, 100) + `{}` + strings.Repeat(`}`, 100), `deeper than`},
	} {
		_, err := CompileSchema(json.RawMessage(tc.schema))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.schema, err, tc.want)
		}
	}
}

func FuzzCompileSchema(f *testing.F) {
	for _, tc := range testSchemas {
		if tc.schema != "" {
			f.Add(tc.schema, "{}")
		}
	}
	f.Add(`{"anyOf":[{"type":"integer"},{"type":"string"}]}`, `"a"`)
	f.Add(`{"$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/a"}}},"$ref":"#/$defs/a"}`, `[[],[[]]]`)
	f.Fuzz(func(t *testing.T, schema, text string) {
		g, err := CompileSchema(json.RawMessage(schema))
		if err != nil {
			return
		}
		// Whatever compiles must run without panicking, and anything it
		// accepts as complete must be JSON that validates.
		s := g.Start()
		if s.Advance([]byte(text)) != nil || !s.Done() {
			return
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		var val any
		if err := dec.Decode(&val); err != nil || dec.More() {
			t.Fatalf("schema %s accepted invalid JSON %q", schema, text)
		}
		var sch any
		if err := json.Unmarshal([]byte(schema), &sch); err != nil {
			t.Fatalf("compiled a schema encoding/json rejects: %v", err)
		}
		if err := validate(val, sch, sch); err != nil {
			t.Fatalf("schema %s accepted %q, which does not validate: %v", schema, text, err)
		}
	})
}

func TestTrie(t *testing.T) {
	toks := [][]byte{[]byte("ab"), []byte("a"), []byte("abc"), []byte("b"), []byte("ab"), nil}
	tr := buildTrie(toks, []int32{0, 1, 2, 3, 4})
	// Walk the trie and rebuild each token's bytes from its path.
	got := map[int32]string{}
	var walk func(nd int32, path string)
	walk = func(nd int32, path string) {
		for _, id := range tr.ids[tr.tokLo[nd]:tr.tokHi[nd]] {
			got[id] = path
		}
		for e := tr.edgeLo[nd]; e < tr.edgeHi[nd]; e++ {
			walk(tr.edgeChild[e], path+string(tr.edgeByte[e]))
		}
	}
	walk(0, "")
	if len(got) != 5 {
		t.Fatalf("trie holds %d tokens, want 5", len(got))
	}
	for id, p := range got {
		if p != string(toks[id]) {
			t.Errorf("token %d at path %q", id, p)
		}
	}
}

func TestNoAllocationsInSteadyState(t *testing.T) {
	v, toks := testVocab()
	g := compileTest(t, testSchemas[1].schema)
	s := g.Start()
	allowed := make([]bool, v.Size())
	prefix := []byte(`{"name":"ab`)
	if err := s.Advance(prefix); err != nil {
		t.Fatal(err)
	}
	s.Mask(v, allowed) // grow the scratch once
	var tok []byte
	for _, tk := range toks {
		if string(tk) == "a" {
			tok = tk
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		s.Mask(v, allowed)
	})
	if allocs != 0 {
		t.Errorf("Mask allocates %v times per call", allocs)
	}
	s.Advance(tok)
	allocs = testing.AllocsPerRun(20, func() {
		if err := s.Advance(tok); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Advance allocates %v times per call", allocs)
	}
}

// TestPrettyPrinterWhitespace: what json.MarshalIndent and Python's
// json.dumps write is accepted; whitespace before a comma, or padding past
// the indentation of the depth, is not.
func TestPrettyPrinterWhitespace(t *testing.T) {
	g := compileTest(t, `{"type":"object","properties":{"a":{"type":"array","items":{"type":"object","properties":{"b":{"type":"integer"}}}},"c":{"type":"string"}},"required":["a","c"],"additionalProperties":false}`)
	for _, ok := range []string{
		"{\n  \"a\": [\n    {\n      \"b\": 1\n    }\n  ],\n  \"c\": \"x\"\n}",
		"{\n    \"a\": [\n        {\n            \"b\": 1\n        }\n    ],\n    \"c\": \"x\"\n}",
		`{"a": [{"b": 1}, {}], "c": "x"}`,
		`{ "a": [ { "b": 1 } ], "c": "x" }`,
		`{"a":[],"c":"x"}`,
	} {
		if err := g.Start().Advance([]byte(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"{\n     \"a\"",         // 5 spaces at depth 1
		"{\"a\": [\n         {", // 9 spaces at depth 2
		"{\"a\": [] ,",          // space before ','
		"{\"a\": []\n,",         // newline before ','
		"{\"a\" : []",           // space before ':'
	} {
		if err := g.Start().Advance([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
