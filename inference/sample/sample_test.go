package sample

import (
	"math"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func mustNew(t *testing.T, p Params, vocab int) *Sampler {
	t.Helper()
	s, err := New(p, vocab)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestRNGGolden pins the generator's stream: these values come from an
// independent Python transcription of splitmix64 + xoshiro256**, so a seeded
// request replays identically on every platform.
func TestRNGGolden(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		want []uint64
	}{
		{42, []uint64{0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1}},
		{0, []uint64{0x99ec5f36cb75f2b4, 0xbf6e1f784956452a}},
	} {
		r := newRNG(tc.seed)
		for i, w := range tc.want {
			if got := r.Uint64(); got != w {
				t.Errorf("seed %d output %d = %#x, want %#x", tc.seed, i, got, w)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	d := DefaultParams
	with := func(f func(*Params)) Params { p := d(); f(&p); return p }
	for _, tc := range []struct {
		name string
		p    Params
		want string // substring of the error; "" = valid
	}{
		{"default", d(), ""},
		{"greedy", with(func(p *Params) { p.Temperature = 0 }), ""},
		{"zero value", Params{}, "top_p"},
		{"temperature high", with(func(p *Params) { p.Temperature = 2.5 }), "temperature"},
		{"temperature nan", with(func(p *Params) { p.Temperature = float32(math.NaN()) }), "temperature"},
		{"top_p zero", with(func(p *Params) { p.TopP = 0 }), "top_p"},
		{"top_k negative", with(func(p *Params) { p.TopK = -1 }), "top_k"},
		{"min_p", with(func(p *Params) { p.MinP = 1.5 }), "min_p"},
		{"presence", with(func(p *Params) { p.PresencePenalty = 2.1 }), "presence_penalty"},
		{"frequency", with(func(p *Params) { p.FrequencyPenalty = -3 }), "frequency_penalty"},
		{"repetition zero", with(func(p *Params) { p.RepetitionPenalty = 0 }), "repetition_penalty"},
		{"bias token", with(func(p *Params) { p.LogitBias = map[int32]float32{10: 1} }), "token 10"},
		{"bias value", with(func(p *Params) { p.LogitBias = map[int32]float32{1: 101} }), "between -100 and 100"},
		{"top_logprobs needs logprobs", with(func(p *Params) { p.TopLogprobs = 2 }), "needs logprobs"},
		{"top_logprobs range", with(func(p *Params) { p.Logprobs = true; p.TopLogprobs = 21 }), "top_logprobs"},
	} {
		_, err := New(tc.p, 10)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(d(), 0); err == nil {
		t.Error("vocabulary size 0 accepted")
	}
}

func TestGreedy(t *testing.T) {
	p := DefaultParams()
	p.Temperature = 0
	s := mustNew(t, p, 5)
	for _, tc := range []struct {
		logits []float32
		want   int32
	}{
		{[]float32{0, 3, 1, 2, -1}, 1},
		{[]float32{1, 5, 5, 2, 5}, 1}, // tie → lowest id
		{[]float32{float32(math.NaN()), -1, -2, -3, -4}, 1},
		{[]float32{0, 0, float32(math.Inf(1)), 0, 0}, 2},
	} {
		if got, _ := s.Sample(tc.logits, nil); got != tc.want {
			t.Errorf("greedy(%v) = %d, want %d", tc.logits, got, tc.want)
		}
	}
}

func TestMaskAndAllForbidden(t *testing.T) {
	p := DefaultParams()
	s := mustNew(t, p, 4)
	allowed := []bool{false, false, true, false}
	for range 50 {
		if tok, _ := s.SampleAllowed([]float32{9, 9, 0, 9}, nil, allowed); tok != 2 {
			t.Fatalf("masked sample gave %d, want 2", tok)
		}
	}
	if tok, _ := s.SampleAllowed([]float32{1, 2, 3, 4}, nil, make([]bool, 4)); tok != -1 {
		t.Errorf("everything forbidden gave %d, want -1", tok)
	}
	nan := float32(math.NaN())
	if tok, _ := s.Sample([]float32{nan, nan, nan, nan}, nil); tok != -1 {
		t.Errorf("all-NaN logits gave %d, want -1", tok)
	}
}

func TestSeedReproducible(t *testing.T) {
	logits := []float32{1, 2, 3, 2.5, 0.5, 1.5, 2.2, 0}
	run := func(seed *uint64) ([]int32, uint64) {
		p := DefaultParams()
		p.Seed = seed
		p.TopP = 0.95
		s := mustNew(t, p, len(logits))
		var out []int32
		buf := make([]float32, len(logits))
		for range 200 {
			copy(buf, logits)
			tok, _ := s.Sample(buf, out)
			out = append(out, tok)
		}
		return out, s.Seed()
	}
	a, _ := run(ptr(uint64(7)))
	b, _ := run(ptr(uint64(7)))
	c, _ := run(ptr(uint64(8)))
	if !equal(a, b) {
		t.Error("same seed gave different sequences")
	}
	if equal(a, c) {
		t.Error("different seeds gave the same 200-token sequence")
	}
	// An unseeded sampler reports its seed, and that seed replays it.
	u, seed := run(nil)
	if r, _ := run(&seed); !equal(u, r) {
		t.Error("replaying the reported seed gave a different sequence")
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// expected computes the distribution the sampler should draw from, by sorting
// in float64: softmax(logits/T), keep top-k, then the smallest top-p prefix,
// then tokens with p ≥ min_p·p_max, renormalised.
func expected(logits []float64, p Params) []float64 {
	n := len(logits)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	// insertion sort by logit desc, id asc
	for i := 1; i < n; i++ {
		for j := i; j > 0 && logits[order[j]] > logits[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	maxv := logits[order[0]]
	prob := make([]float64, n)
	for i, l := range logits {
		prob[i] = math.Exp((l - maxv) / float64(p.Temperature))
	}
	keep := n
	if p.TopK > 0 && p.TopK < n {
		keep = p.TopK
	}
	var tot float64
	for _, i := range order[:keep] {
		tot += prob[i]
	}
	if p.TopP < 1 {
		var cum float64
		for j, i := range order[:keep] {
			cum += prob[i] / tot
			if cum >= float64(p.TopP)-1e-12 {
				keep = j + 1
				break
			}
		}
	}
	out := make([]float64, n)
	var sum float64
	for j, i := range order[:keep] {
		if j > 0 && prob[i] < float64(p.MinP)*prob[order[0]] {
			break
		}
		out[i] = prob[i]
		sum += prob[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func TestDistribution(t *testing.T) {
	spread := []float64{2.0, 1.0, 0.5, 0.0, -0.5, -1.0, 1.5, 0.2}
	// Clustered logits share truncation buckets, so the cut falls inside one.
	clustered := []float64{2.0, 2.05, 1.98, 2.1, 2.02, 0.3, 2.07, 2.0}
	// softmax at T=1: .355 .131 .079 .048 .029 .018 .215 .059 (approx)
	base := DefaultParams()
	with := func(f func(*Params)) Params { p := base; f(&p); return p }
	for _, tc := range []struct {
		name   string
		p      Params
		logits []float64
	}{
		{"clustered top-p 0.5", with(func(p *Params) { p.TopP = 0.5 }), clustered},
		{"clustered top-p 0.7 T 0.3", with(func(p *Params) { p.TopP = 0.7; p.Temperature = 0.3 }), clustered},
		{"clustered top-k 3", with(func(p *Params) { p.TopK = 3 }), clustered},
		{"clustered top-p 0.9 min-p 0.95", with(func(p *Params) { p.TopP = 0.9; p.MinP = 0.95 }), clustered},
		{"plain", base, nil},
		{"temperature 0.5", with(func(p *Params) { p.Temperature = 0.5 }), nil},
		{"temperature 1.7", with(func(p *Params) { p.Temperature = 1.7 }), nil},
		{"top-k 3", with(func(p *Params) { p.TopK = 3 }), nil},
		{"top-k 1", with(func(p *Params) { p.TopK = 1 }), nil},
		{"top-p 0.6", with(func(p *Params) { p.TopP = 0.6 }), nil},
		{"top-p 0.9 T 0.8", with(func(p *Params) { p.TopP = 0.9; p.Temperature = 0.8 }), nil},
		{"top-k 4 then top-p 0.8", with(func(p *Params) { p.TopK = 4; p.TopP = 0.8 }), nil},
		{"min-p 0.2", with(func(p *Params) { p.MinP = 0.2 }), nil},
		{"min-p 0.3 T 1.5", with(func(p *Params) { p.MinP = 0.3; p.Temperature = 1.5 }), nil},
		{"top-k 5 top-p 0.95 min-p 0.1", with(func(p *Params) { p.TopK = 5; p.TopP = 0.95; p.MinP = 0.1 }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logits := tc.logits
			if logits == nil {
				logits = spread
			}
			p := tc.p
			p.Seed = ptr(uint64(12345))
			s := mustNew(t, p, len(logits))
			want := expected(logits, p)
			const draws = 200000
			counts := make([]int, len(logits))
			buf := make([]float32, len(logits))
			for range draws {
				for i, l := range logits {
					buf[i] = float32(l)
				}
				tok, _ := s.Sample(buf, nil)
				counts[tok]++
			}
			var chi2 float64
			df := -1
			for i, c := range counts {
				if want[i] == 0 {
					if c != 0 {
						t.Errorf("token %d drawn %d times but should be cut", i, c)
					}
					continue
				}
				e := want[i] * draws
				chi2 += (float64(c) - e) * (float64(c) - e) / e
				df++
			}
			// With a fixed seed this is deterministic; the bound is far beyond
			// the 99.99th percentile of chi-square for up to 7 degrees of freedom.
			if limit := float64(df) + 30; chi2 > limit {
				t.Errorf("chi-square %.1f > %.1f (df %d): counts %v, want probs %v", chi2, limit, df, counts, want)
			}
		})
	}
}

func TestPenalties(t *testing.T) {
	logits := []float32{2, -2, 1, 0.5, 0}
	for _, tc := range []struct {
		name    string
		p       Params
		prompt  []int32
		history []int32
		want    []float32
	}{
		{
			name:    "presence and frequency over generated tokens",
			p:       Params{PresencePenalty: 0.5, FrequencyPenalty: 0.25},
			prompt:  []int32{3},
			history: []int32{0, 0, 1, 0, 99, -1},
			// token 0 seen 3x: 2 - 3*0.25 - 0.5; token 1 once: -2 - 0.25 - 0.5
			want: []float32{0.75, -2.75, 1, 0.5, 0},
		},
		{
			name:    "negative presence encourages",
			p:       Params{PresencePenalty: -1},
			history: []int32{4, 4},
			want:    []float32{2, -2, 1, 0.5, 1},
		},
		{
			name:    "repetition over prompt and generated, once per token",
			p:       Params{RepetitionPenalty: 2},
			prompt:  []int32{0, 2, 2},
			history: []int32{1, 0, 1},
			want:    []float32{1, -4, 0.5, 0.5, 0},
		},
		{
			name:    "repetition then frequency",
			p:       Params{RepetitionPenalty: 2, FrequencyPenalty: 1},
			history: []int32{0, 0},
			want:    []float32{-1, -2, 1, 0.5, 0},
		},
	} {
		p := tc.p
		p.Temperature, p.TopP = 0, 1
		if p.RepetitionPenalty == 0 {
			p.RepetitionPenalty = 1
		}
		s := mustNew(t, p, len(logits))
		s.SetPrompt(tc.prompt)
		got := append([]float32(nil), logits...)
		// Call twice: the second call must not be affected by the first's marks.
		s.applyPenalties(append([]float32(nil), logits...), tc.history)
		s.applyPenalties(got, tc.history)
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: logits %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestLogitBias(t *testing.T) {
	logits := []float32{3, 2.5, 1, 0.5, -1}
	buf := make([]float32, len(logits))
	for _, tc := range []struct {
		name   string
		bias   map[int32]float32
		banned int32 // never drawn, or -1
		forced int32 // always drawn, or -1
	}{
		{"ban the favourite", map[int32]float32{0: -100}, 0, -1},
		{"force an unlikely token", map[int32]float32{4: 100}, -1, 4},
	} {
		p := DefaultParams()
		p.Temperature = 2
		p.LogitBias = tc.bias
		p.Seed = ptr(uint64(1))
		s := mustNew(t, p, len(logits))
		for range 20000 {
			copy(buf, logits)
			tok, _ := s.Sample(buf, nil)
			if tok == tc.banned || (tc.forced >= 0 && tok != tc.forced) {
				t.Fatalf("%s: drew %d", tc.name, tok)
			}
		}
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 3, -2, 3, 0.5, 2, 7 - 9, -50}
	p := DefaultParams()
	p.Logprobs = true
	p.TopLogprobs = 4
	p.Temperature = 0.3 // must not change the reported values
	p.TopK = 2
	p.LogitBias = map[int32]float32{5: 0.5}
	s := mustNew(t, p, len(logits))
	buf := append([]float32(nil), logits...)
	tok, info := s.Sample(buf, nil)

	biased := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		biased[i] = float64(l)
		if i == 5 {
			biased[i] += 0.5
		}
		sum += math.Exp(biased[i])
	}
	lp := func(i int32) float64 { return biased[i] - math.Log(sum) }
	if math.Abs(float64(info.Logprob)-lp(tok)) > 1e-5 {
		t.Errorf("logprob of %d = %v, want %v", tok, info.Logprob, lp(tok))
	}
	wantTop := []int32{1, 3, 5, 0} // 3 and 3 tie → lower id first; 2.5; 1
	if len(info.Top) != len(wantTop) {
		t.Fatalf("top has %d entries, want %d", len(info.Top), len(wantTop))
	}
	for i, w := range wantTop {
		if info.Top[i].Token != w || math.Abs(float64(info.Top[i].Logprob)-lp(w)) > 1e-5 {
			t.Errorf("top[%d] = %+v, want token %d logprob %v", i, info.Top[i], w, lp(w))
		}
	}

	// A masked-out token leaves the reported distribution.
	p.TopLogprobs = 1
	s = mustNew(t, p, len(logits))
	allowed := []bool{true, false, true, false, true, true, true, true}
	_, info = s.SampleAllowed(append([]float32(nil), logits...), nil, allowed)
	if info.Top[0].Token != 5 {
		t.Errorf("top after masking = %+v, want token 5", info.Top[0])
	}
}

func TestNoAllocations(t *testing.T) {
	const vocab = 5000
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)*0.37)) * 6
	}
	history := []int32{1, 2, 3, 3, 4000}
	allowed := make([]bool, vocab)
	for i := range allowed {
		allowed[i] = i%3 != 0
	}
	for _, p := range []Params{
		{Temperature: 0, TopP: 1, RepetitionPenalty: 1},
		{Temperature: 0.8, TopP: 0.9, TopK: 40, MinP: 0.05, PresencePenalty: 0.5, FrequencyPenalty: 0.5,
			RepetitionPenalty: 1.1, LogitBias: map[int32]float32{7: 5}, Logprobs: true, TopLogprobs: 5},
		{Temperature: 1, TopP: 0.95, RepetitionPenalty: 1, Logprobs: true, TopLogprobs: 20},
		{Temperature: 1, TopP: 1, MinP: 0.1, RepetitionPenalty: 1},
	} {
		s := mustNew(t, p, vocab)
		s.SetPrompt([]int32{5, 6})
		buf := make([]float32, vocab)
		allocs := testing.AllocsPerRun(50, func() {
			copy(buf, logits)
			s.SampleAllowed(buf, history, allowed)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per Sample", p, allocs)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	const vocab = 152064 // Qwen2-sized
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)*0.37))*4 + float32(i%97)*0.02
	}
	// A peaked distribution like a real model's: most logits near 0, a few
	// tokens far above (the flat sine one above is the worst case for top-p).
	peaked := make([]float32, vocab)
	r := newRNG(3)
	for i := range peaked {
		peaked[i] = float32(r.Float64()+r.Float64()+r.Float64()-1.5) * 3
	}
	for i := range 20 {
		peaked[i*7919%vocab] = 8 + float32(i)*0.3
	}
	history := make([]int32, 500)
	for i := range history {
		history[i] = int32(i * 37 % vocab)
	}
	for _, bc := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{TopP: 1, RepetitionPenalty: 1}},
		{"temperature", Params{Temperature: 0.7, TopP: 1, RepetitionPenalty: 1}},
		{"top-p", Params{Temperature: 0.7, TopP: 0.9, RepetitionPenalty: 1}},
		{"top-k40+top-p+penalties+logprobs", Params{Temperature: 0.7, TopP: 0.9, TopK: 40, PresencePenalty: 0.3,
			RepetitionPenalty: 1.1, Logprobs: true, TopLogprobs: 5}},
	} {
		for _, dist := range []struct {
			name   string
			logits []float32
		}{{"flat", logits}, {"peaked", peaked}} {
			b.Run(bc.name+"/"+dist.name, func(b *testing.B) {
				s, err := New(bc.p, vocab)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]float32, vocab)
				for b.Loop() {
					copy(buf, dist.logits)
					s.Sample(buf, history)
				}
			})
		}
	}
}

// FuzzSample feeds arbitrary logits (NaN, ±Inf, huge values), masks and
// parameters: the result must be an allowed token with a logit above -Inf,
// or -1 exactly when there is none, and logprobs must not be NaN.
func FuzzSample(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(100), uint8(90), uint8(3), uint8(5), uint64(1))
	f.Add([]byte{0xff, 0xff, 0x80, 0x7f, 0, 0, 0x80, 0xff}, uint8(1), uint8(1), uint8(0), uint8(0), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, temp, topP, topK, minP uint8, seed uint64) {
		n := len(raw) / 4
		if n == 0 {
			return
		}
		logits := make([]float32, n)
		allowed := make([]bool, n)
		any := false
		for i := range logits {
			bits := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
			logits[i] = math.Float32frombits(bits)
			allowed[i] = bits%5 != 0
			l := logits[i]
			any = any || (allowed[i] && l == l && !math.IsInf(float64(l), -1))
		}
		orig := append([]float32(nil), logits...)
		p := Params{
			Temperature:       float32(temp%201) / 100,
			TopP:              float32(topP%100+1) / 100,
			TopK:              int(topK % 10),
			MinP:              float32(minP%101) / 100,
			RepetitionPenalty: 1,
			Seed:              &seed,
			Logprobs:          true,
			TopLogprobs:       min(n, 3),
		}
		s, err := New(p, n)
		if err != nil {
			t.Fatal(err)
		}
		tok, info := s.SampleAllowed(logits, nil, allowed)
		if !any {
			if tok != -1 {
				t.Fatalf("nothing allowed but got %d", tok)
			}
			return
		}
		if tok < 0 || !allowed[tok] || orig[tok] != orig[tok] {
			t.Fatalf("got token %d (allowed %v, logit %v)", tok, tok >= 0 && allowed[tok], orig[max(tok, 0)])
		}
		if info.Logprob != info.Logprob || info.Logprob > 0 {
			t.Fatalf("logprob %v", info.Logprob)
		}
		for _, e := range info.Top {
			if !allowed[e.Token] || e.Logprob != e.Logprob {
				t.Fatalf("top entry %+v", e)
			}
		}
	})
}

// TestChoiceSeed: choice 0 keeps the seed, the other choices are distinct
// from each other and from the seeds a neighbouring request would use.
func TestChoiceSeed(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, 1 << 63, ^uint64(0)} {
		if ChoiceSeed(seed, 0) != seed {
			t.Fatalf("choice 0 of seed %d changed", seed)
		}
		seen := map[uint64]bool{}
		for i := 0; i < 64; i++ {
			s := ChoiceSeed(seed, i)
			if seen[s] {
				t.Fatalf("seed %d: choice %d repeats an earlier choice's seed", seed, i)
			}
			seen[s] = true
			if i > 0 && (s == seed+uint64(i) || s == ChoiceSeed(seed+uint64(i), 0)) {
				t.Fatalf("seed %d: choice %d uses the seed of request seed+%d", seed, i, i)
			}
			if s != ChoiceSeed(seed, i) {
				t.Fatal("ChoiceSeed is not deterministic")
			}
		}
	}
}
