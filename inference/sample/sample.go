// Package sample turns a model's logits into the next token: OpenAI-style
// penalties and logit bias, an optional grammar mask, temperature, top-k,
// top-p and min-p truncation, a seeded random draw, and the logprobs the API
// reports. It also holds the stop-string matcher used on the decoded text.
//
// Processing order (the same as vLLM and llama.cpp's penalty-first chains):
//
//	repetition penalty → presence/frequency penalties → logit_bias → mask
//	→ (logprobs are read here) → temperature → top-k → top-p → min-p → draw
//
// Logprobs are the log-softmax of the logits after penalties, bias and mask but
// before temperature and truncation. OpenAI documents logprobs as the model's
// log probability of each token, and the values it returns do not change with
// temperature or top_p; vLLM likewise reports them before its sampling
// transforms. Including the bias and mask means every token listed in
// top_logprobs is one the request could actually have produced (a banned or
// grammar-forbidden token shows up as never likely, not as a phantom rival).
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params are the sampling fields of one request, already defaulted by the
// caller. Start from DefaultParams: the zero value is not valid (TopP 0 and
// RepetitionPenalty 0 are rejected) so that a forgotten default fails loudly.
type Params struct {
	// Temperature in [0, 2]; 0 means greedy (argmax, ties to the lowest id).
	Temperature float32
	// TopP in (0, 1]; 1 disables nucleus truncation.
	TopP float32
	// TopK ≥ 0; 0 disables it.
	TopK int
	// MinP in [0, 1]; keeps tokens whose probability is at least MinP times the
	// most likely token's (after temperature). 0 disables it.
	MinP float32
	// PresencePenalty and FrequencyPenalty in [-2, 2], OpenAI semantics over the
	// generated tokens only: logit -= count*Frequency + (count>0)*Presence.
	PresencePenalty, FrequencyPenalty float32
	// RepetitionPenalty > 0; 1 = off. HF/llama.cpp semantics over prompt and
	// generated tokens (each distinct token once): positive logits are divided
	// by it, negative ones multiplied.
	RepetitionPenalty float32
	// LogitBias adds a value in [-100, 100] to a token's logit, as OpenAI's
	// logit_bias does: -100 in practice bans the token and +100 forces it.
	LogitBias map[int32]float32
	// Seed makes the draw reproducible; nil picks a random seed (see Seed()).
	Seed *uint64
	// TopLogprobs in [0, 20] alternatives reported per token; needs Logprobs.
	TopLogprobs int
	// Logprobs asks for the chosen token's log probability.
	Logprobs bool
}

// DefaultParams returns OpenAI's defaults: temperature 1, top_p 1, no
// truncation, no penalties.
func DefaultParams() Params {
	return Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
}

// MaxTopLogprobs is the most alternatives OpenAI allows in top_logprobs.
const MaxTopLogprobs = 20

// TokenLogprob is one token with its log probability.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// TokenInfo reports the chosen token's log probability (when Params.Logprobs)
// and the TopLogprobs most likely tokens, most likely first (ties by lower id).
// Top aliases the sampler's scratch: it is valid until the next Sample call,
// so copy it before sampling again.
type TokenInfo struct {
	Logprob float32
	Top     []TokenLogprob
}

// Sampler samples the tokens of one sequence. It owns its RNG and scratch
// buffers, so it is not safe for concurrent use; make one per sequence.
type Sampler struct {
	p     Params
	vocab int
	seed  uint64
	rng   rng

	bias   []biasEntry // LogitBias sorted by token, applied in a fixed order
	prompt []int32     // for the repetition penalty; set by SetPrompt

	stamp  []uint32 // per-token epoch marks for de-duplicating history
	counts []int32  // per-token counts for the frequency penalty
	epoch  uint32

	weights []float32 // exp((logit-max)/T) per token, scratch
	bucket  []uint8   // per token truncation bucket, scratch
	heap    []int32   // token ids; a max-heap by logit, popped into its tail
	top     []TokenLogprob
}

type biasEntry struct {
	tok  int32
	bias float32
}

// New validates p against a vocabulary of vocabSize logits and returns a
// sampler with all its scratch allocated, so that Sample does not allocate.
func New(p Params, vocabSize int) (*Sampler, error) {
	if vocabSize <= 0 {
		return nil, fmt.Errorf("sample: vocabulary size %d must be positive", vocabSize)
	}
	if err := p.validate(vocabSize); err != nil {
		return nil, err
	}
	s := &Sampler{p: p, vocab: vocabSize}
	if p.Seed != nil {
		s.seed = *p.Seed
	} else {
		s.seed = rand.Uint64()
	}
	s.rng = newRNG(s.seed)
	for tok, b := range p.LogitBias {
		s.bias = append(s.bias, biasEntry{tok, b})
	}
	slices.SortFunc(s.bias, func(a, b biasEntry) int { return int(a.tok) - int(b.tok) })
	if p.RepetitionPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0 {
		s.stamp = make([]uint32, vocabSize)
		s.counts = make([]int32, vocabSize)
	}
	if p.Temperature > 0 {
		s.weights = make([]float32, vocabSize)
		if p.TopK > 0 || p.TopP < 1 {
			s.heap = make([]int32, vocabSize)
			s.bucket = make([]uint8, vocabSize)
		}
	}
	s.top = make([]TokenLogprob, 0, p.TopLogprobs)
	return s, nil
}

func (p *Params) validate(vocab int) error {
	bad := func(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) }
	switch {
	case bad(p.Temperature) || p.Temperature < 0 || p.Temperature > 2:
		return fmt.Errorf("sample: temperature %v must be between 0 and 2", p.Temperature)
	case bad(p.TopP) || p.TopP <= 0 || p.TopP > 1:
		return fmt.Errorf("sample: top_p %v must be greater than 0 and at most 1", p.TopP)
	case p.TopK < 0:
		return fmt.Errorf("sample: top_k %d must be 0 (off) or positive", p.TopK)
	case bad(p.MinP) || p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("sample: min_p %v must be between 0 and 1", p.MinP)
	case bad(p.PresencePenalty) || p.PresencePenalty < -2 || p.PresencePenalty > 2:
		return fmt.Errorf("sample: presence_penalty %v must be between -2 and 2", p.PresencePenalty)
	case bad(p.FrequencyPenalty) || p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2:
		return fmt.Errorf("sample: frequency_penalty %v must be between -2 and 2", p.FrequencyPenalty)
	case bad(p.RepetitionPenalty) || p.RepetitionPenalty <= 0:
		return fmt.Errorf("sample: repetition_penalty %v must be positive (1 = off)", p.RepetitionPenalty)
	case p.TopLogprobs < 0 || p.TopLogprobs > MaxTopLogprobs:
		return fmt.Errorf("sample: top_logprobs %d must be between 0 and %d", p.TopLogprobs, MaxTopLogprobs)
	case p.TopLogprobs > 0 && !p.Logprobs:
		return errors.New("sample: top_logprobs needs logprobs to be true")
	}
	for tok, b := range p.LogitBias {
		if tok < 0 || int(tok) >= vocab {
			return fmt.Errorf("sample: logit_bias token %d is outside the vocabulary of %d tokens", tok, vocab)
		}
		if bad(b) || b < -100 || b > 100 {
			return fmt.Errorf("sample: logit_bias value %v for token %d must be between -100 and 100", b, tok)
		}
	}
	return nil
}

// Seed returns the seed in use (the random one when Params.Seed was nil), so a
// caller can log it and replay the sequence.
func (s *Sampler) Seed() uint64 { return s.seed }

// Params returns the validated parameters.
func (s *Sampler) Params() Params { return s.p }

// SetPrompt records the prompt tokens for the repetition penalty, which (as in
// HF transformers) also counts tokens of the prompt. The slice is kept, not
// copied: do not modify it while the sampler is in use.
func (s *Sampler) SetPrompt(prompt []int32) { s.prompt = prompt }

// Sample is SampleAllowed without a mask.
func (s *Sampler) Sample(logits []float32, history []int32) (int32, TokenInfo) {
	return s.SampleAllowed(logits, history, nil)
}

// SampleAllowed picks the next token. logits (len = vocabSize) is modified in
// place. history is the tokens generated so far (not the prompt; see
// SetPrompt); ids outside the vocabulary are ignored. allowed, when non-nil
// (len = vocabSize), forbids every token whose entry is false, as a grammar
// mask does; NaN and -Inf logits are treated as forbidden too.
//
// When every token is forbidden the result is -1 and an empty TokenInfo: the
// caller must treat that as an error. A sampling step draws exactly one RNG
// value when temperature > 0 and none when greedy, so a seeded sampler given
// the same logits reproduces the same tokens.
func (s *Sampler) SampleAllowed(logits []float32, history []int32, allowed []bool) (int32, TokenInfo) {
	if len(logits) != s.vocab {
		panic(fmt.Sprintf("sample: got %d logits for a vocabulary of %d", len(logits), s.vocab))
	}
	if allowed != nil && len(allowed) != s.vocab {
		panic(fmt.Sprintf("sample: allowed mask has %d entries for a vocabulary of %d", len(allowed), s.vocab))
	}
	s.applyPenalties(logits, history)
	for _, b := range s.bias {
		logits[b.tok] += b.bias
	}
	negInf := float32(math.Inf(-1))
	maxv, best := negInf, int32(-1)
	for i, l := range logits {
		if l != l || (allowed != nil && !allowed[i]) {
			logits[i] = negInf
			continue
		}
		if l > math.MaxFloat32 { // +Inf would turn into NaN once the max is subtracted
			l = math.MaxFloat32
			logits[i] = l
		}
		if l > maxv {
			maxv, best = l, int32(i)
		}
	}
	if best < 0 {
		return -1, TokenInfo{}
	}

	tok := best
	if s.p.Temperature > 0 {
		tok = s.draw(logits, maxv)
	}

	var info TokenInfo
	if s.p.Logprobs {
		lse := logSumExp(logits, maxv)
		info.Logprob = float32(float64(logits[tok]) - lse)
		if s.p.TopLogprobs > 0 {
			info.Top = s.topLogprobs(logits, lse)
		}
	}
	return tok, info
}

// applyPenalties applies the repetition penalty over prompt and history, then
// OpenAI's presence/frequency penalties over history.
func (s *Sampler) applyPenalties(logits []float32, history []int32) {
	vocab := int32(s.vocab)
	if rp := s.p.RepetitionPenalty; rp != 1 {
		e := s.nextEpoch()
		for _, seq := range [2][]int32{s.prompt, history} {
			for _, t := range seq {
				if t < 0 || t >= vocab || s.stamp[t] == e {
					continue
				}
				s.stamp[t] = e
				if l := logits[t]; l > 0 {
					logits[t] = l / rp
				} else {
					logits[t] = l * rp
				}
			}
		}
	}
	if pres, freq := s.p.PresencePenalty, s.p.FrequencyPenalty; pres != 0 || freq != 0 {
		e := s.nextEpoch()
		for _, t := range history {
			if t < 0 || t >= vocab {
				continue
			}
			if s.stamp[t] != e {
				s.stamp[t] = e
				s.counts[t] = 0
			}
			s.counts[t]++
		}
		for _, t := range history {
			if t < 0 || t >= vocab || s.counts[t] == 0 {
				continue
			}
			logits[t] -= float32(s.counts[t])*freq + pres
			s.counts[t] = 0 // apply once per distinct token
		}
	}
}

// nextEpoch returns a fresh stamp value, clearing the marks on wrap-around.
func (s *Sampler) nextEpoch() uint32 {
	s.epoch++
	if s.epoch == 0 {
		clear(s.stamp)
		s.epoch = 1
	}
	return s.epoch
}

func logSumExp(logits []float32, maxv float32) float64 {
	var sum float64
	for _, l := range logits {
		sum += float64(exp32(l - maxv))
	}
	return float64(maxv) + math.Log(sum)
}

// Truncation buckets: the scaled distance d = (max-logit)/T of each token is
// binned in steps of 1/bucketsPerNat, so every token in bucket b outweighs
// every token in bucket b+1. Summing weight and count per bucket finds, in one
// pass, which tokens top-k or top-p could possibly keep; only those are ranked.
const (
	bucketsPerNat = 4
	numBuckets    = 160 // d up to 40: weight e^-40 ≈ 4e-18, the last bucket takes the rest
)

// draw applies temperature, top-k, top-p and min-p to the masked logits and
// draws one token. maxv is the largest logit (finite).
func (s *Sampler) draw(logits []float32, maxv float32) int32 {
	invT := 1 / s.p.Temperature
	w := s.weights
	// The most likely token has weight exactly 1, so min-p's threshold is MinP.
	minW := s.p.MinP
	u := s.rng.Float64()

	if s.p.TopK == 0 && s.p.TopP >= 1 {
		// No ranking needed: min-p is a plain threshold.
		var total float64
		for i, l := range logits {
			x := exp32((l - maxv) * invT) // exp(-inf) = 0 for forbidden tokens
			w[i] = x
			if x >= minW && x > 0 {
				total += float64(x)
			}
		}
		target := u * total
		last := int32(-1)
		var cum float64
		for i, x := range w {
			if x >= minW && x > 0 {
				cum += float64(x)
				last = int32(i)
				if cum > target {
					return int32(i)
				}
			}
		}
		return last // rounding left target unreached
	}

	var bucketW [numBuckets]float64
	var bucketN [numBuckets]int
	var total float64
	positive := 0
	bucket := s.bucket
	for i, l := range logits {
		d := (maxv - l) * invT
		x := exp32(-d)
		w[i] = x
		if x > 0 {
			b := min(int(d*bucketsPerNat), numBuckets-1)
			bucket[i] = uint8(b)
			bucketW[b] += float64(x)
			bucketN[b]++
			total += float64(x)
			positive++
		}
	}
	if s.p.TopK == 0 || s.p.TopK >= positive {
		return s.nucleus(logits, &bucketW, total, u)
	}

	// Top-k: only the buckets holding the k best tokens need ranking.
	topK := s.p.TopK
	bound, n := numBuckets-1, 0
	for b := range numBuckets {
		if n += bucketN[b]; n >= topK {
			bound = b
			break
		}
	}
	h := s.heap[:0]
	for i, x := range w {
		if x > 0 && int(bucket[i]) <= bound {
			h = append(h, int32(i))
		}
	}
	rk := ranker{h: h, logits: logits}
	rk.init()
	keep := topK
	total = 0 // renormalise over the top-k set before top-p
	for j := range keep {
		total += float64(w[rk.pop(j)])
	}
	if s.p.TopP < 1 {
		goal := float64(s.p.TopP) * total
		var cum float64
		for j := range keep {
			cum += float64(w[rk.pop(j)])
			if cum >= goal {
				keep = j + 1
				break
			}
		}
	}
	// Popped tokens are in descending order, so min-p cuts a suffix; the first
	// has weight 1 and always stays.
	var sum float64
	kept := 0
	for j := range keep {
		x := w[rk.pop(j)]
		if x < minW && j > 0 {
			break
		}
		sum += float64(x)
		kept++
	}
	target := u * sum
	var cum float64
	for j := range kept {
		t := rk.pop(j)
		cum += float64(w[t])
		if cum > target {
			return t
		}
	}
	return rk.pop(kept - 1)
}

// nucleus samples with top-p (no top-k) and min-p. Every token in a bucket
// before the one where the cumulative weight reaches top_p is kept without
// ranking; only that boundary bucket is ranked to find where the nucleus
// ends. Tokens in earlier buckets all outweigh those in later ones, so the
// kept set is the same as ranking the whole vocabulary.
func (s *Sampler) nucleus(logits []float32, bucketW *[numBuckets]float64, total, u float64) int32 {
	w, bucket, minW := s.weights, s.bucket, s.p.MinP
	edge, before := uint8(numBuckets), total // TopP 1: every bucket is inside
	if s.p.TopP < 1 {
		goal := float64(s.p.TopP) * total
		var cum float64
		for b := range numBuckets {
			if cum+bucketW[b] >= goal {
				edge, before = uint8(b), cum
				break
			}
			cum += bucketW[b]
		}
	}
	// Rank the boundary bucket and keep its prefix that reaches the goal.
	h := s.heap[:0]
	for i, x := range w {
		if x > 0 && bucket[i] == edge {
			h = append(h, int32(i))
		}
	}
	rk := ranker{h: h, logits: logits}
	rk.init()
	keepEdge := len(h)
	goal, cum := float64(s.p.TopP)*total, before
	for j := range len(h) {
		if cum += float64(w[rk.pop(j)]); cum >= goal {
			keepEdge = j + 1
			break
		}
	}
	// Min-p: a weight threshold (the best token has weight 1 ≥ MinP).
	var sum float64
	for i, x := range w {
		if x > 0 && x >= minW && bucket[i] < edge {
			sum += float64(x)
		}
	}
	keptEdge := 0
	for j := range keepEdge {
		x := w[rk.pop(j)]
		if x < minW {
			break
		}
		sum += float64(x)
		keptEdge++
	}
	target := u * sum
	last := int32(-1)
	cum = 0
	for i, x := range w {
		if x > 0 && x >= minW && bucket[i] < edge {
			last = int32(i)
			if cum += float64(x); cum > target {
				return last
			}
		}
	}
	for j := range keptEdge {
		last = rk.pop(j)
		if cum += float64(w[last]); cum > target {
			return last
		}
	}
	return last // rounding left target unreached
}

// ranker is a max-heap of token ids ordered by logit (ties: lower id first).
// pop(j) returns the j-th largest, popping lazily: popped ids sit at the tail
// of h in order, as in heapsort, so nothing is allocated.
type ranker struct {
	h      []int32
	logits []float32
	popped int
}

func (r *ranker) less(a, b int32) bool { // a ranks above b
	la, lb := r.logits[a], r.logits[b]
	return la > lb || (la == lb && a < b)
}

func (r *ranker) init() {
	for i := len(r.h)/2 - 1; i >= 0; i-- {
		r.down(i, len(r.h))
	}
}

func (r *ranker) down(i, n int) {
	h := r.h
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && r.less(h[c+1], h[c]) {
			c++
		}
		if !r.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

func (r *ranker) pop(j int) int32 {
	n := len(r.h)
	for r.popped <= j {
		end := n - 1 - r.popped
		r.h[0], r.h[end] = r.h[end], r.h[0]
		r.down(0, end)
		r.popped++
	}
	return r.h[n-1-j]
}

// topLogprobs returns the TopLogprobs most likely tokens by insertion into a
// small sorted buffer: one pass over the vocabulary, no sort of it.
func (s *Sampler) topLogprobs(logits []float32, lse float64) []TokenLogprob {
	n := s.p.TopLogprobs
	top := s.top[:0]
	negInf := float32(math.Inf(-1))
	for i, l := range logits {
		if l == negInf || (len(top) == n && l <= top[n-1].Logprob) {
			continue
		}
		// Insert keeping descending logits; equal logits keep the lower id first.
		j := len(top)
		if j < n {
			top = append(top, TokenLogprob{})
		} else {
			j = n - 1
		}
		for j > 0 && top[j-1].Logprob < l {
			top[j] = top[j-1]
			j--
		}
		top[j] = TokenLogprob{Token: int32(i), Logprob: l}
	}
	for i := range top {
		top[i].Logprob = float32(float64(top[i].Logprob) - lse)
	}
	s.top = top
	return top
}
