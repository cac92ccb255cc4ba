package model

import (
	"encoding/json"
	"fmt"
	"math"
)

// RoPE is one layer's rotary-embedding table: inverse frequencies per rotated
// pair and the factor cos and sin are scaled by.
type RoPE struct {
	Type    string    // default, linear, llama3, longrope, yarn
	InvFreq []float32 // rotDim/2 entries
	// LongInvFreq, for longrope, replaces InvFreq once a sequence extends past
	// OriginalMax positions (transformers switches per forward call).
	LongInvFreq []float32
	OriginalMax int
	Mscale      float32
}

// invFreqFor returns the table to use for a forward call whose last position
// is lastPos.
func (r *RoPE) invFreqFor(lastPos int) []float32 {
	if r.LongInvFreq != nil && lastPos+1 > r.OriginalMax {
		return r.LongInvFreq
	}
	return r.InvFreq
}

// ropeParam is one RoPE parameter set as config.json spells it.
type ropeParam struct {
	Type           string    `json:"rope_type"`
	OldType        string    `json:"type"`
	Theta          *float64  `json:"rope_theta"`
	Factor         *float64  `json:"factor"`
	LowFreqFactor  *float64  `json:"low_freq_factor"`
	HighFreqFactor *float64  `json:"high_freq_factor"`
	OriginalMax    int       `json:"original_max_position_embeddings"`
	ShortFactor    []float64 `json:"short_factor"`
	LongFactor     []float64 `json:"long_factor"`
	AttnFactor     *float64  `json:"attention_factor"`
	BetaFast       *float64  `json:"beta_fast"`
	BetaSlow       *float64  `json:"beta_slow"`
	YarnMscale     *float64  `json:"mscale"`
	YarnMscaleAll  *float64  `json:"mscale_all_dim"`
	Truncate       *bool     `json:"truncate"`
	partialRotary  *float64
	theta          float64
}

// ropeParams reads the global (full-attention) and, for Gemma 3, local
// (sliding-attention) RoPE parameters from either the transformers 5
// rope_parameters block or the older rope_theta/rope_scaling keys.
func ropeParams(r *rawConfig, a *arch) (global ropeParam, local *ropeParam, err error) {
	defTheta := a.ropeTheta
	decode := func(raw json.RawMessage, what string) (ropeParam, error) {
		var p ropeParam
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("%s: %w", what, err)
		}
		var extra struct {
			PRF *float64 `json:"partial_rotary_factor"`
		}
		json.Unmarshal(raw, &extra)
		p.partialRotary = extra.PRF
		return p, nil
	}
	rp := r.RopeParameters
	switch {
	case rp != nil && (rp["full_attention"] != nil || rp["sliding_attention"] != nil):
		if rp["full_attention"] != nil {
			if global, err = decode(rp["full_attention"], "rope_parameters.full_attention"); err != nil {
				return
			}
		}
		if rp["sliding_attention"] != nil {
			var l ropeParam
			if l, err = decode(rp["sliding_attention"], "rope_parameters.sliding_attention"); err != nil {
				return
			}
			local = &l
		}
	case rp != nil:
		b, _ := json.Marshal(rp)
		if global, err = decode(b, "rope_parameters"); err != nil {
			return
		}
	case r.RopeScaling != nil:
		b, _ := json.Marshal(r.RopeScaling)
		if global, err = decode(b, "rope_scaling"); err != nil {
			return
		}
	}
	if global.Theta == nil {
		global.Theta = r.RopeTheta
	}
	global.theta = defTheta
	if global.Theta != nil {
		global.theta = *global.Theta
	}
	if a.localRoPE && local == nil {
		local = &ropeParam{Type: "default", theta: 10000}
		if r.RopeLocalBaseFreq != nil {
			local.theta = *r.RopeLocalBaseFreq
		}
	} else if local != nil {
		local.theta = global.theta
		if local.Theta != nil {
			local.theta = *local.Theta
		}
	}
	return global, local, nil
}

// Llama3Scaling is Llama 3.1's RoPE scaling (rope_type "llama3"): long
// wavelengths are slowed by Factor, short ones kept, and the band between
// interpolates smoothly. It is the one statement of that schedule, used by
// the loader and by the GGUF writers (rope_freqs.weight).
type Llama3Scaling struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OriginalMax                           float64 // original_max_position_embeddings
}

// keep returns the share of inverse frequency f left unscaled: 1 for
// wavelengths under OriginalMax/HighFreqFactor, 0 for those over
// OriginalMax/LowFreqFactor, a linear blend in wavelength between.
func (s Llama3Scaling) keep(f float64) float64 {
	wave := 2 * math.Pi / f
	switch {
	case wave < s.OriginalMax/s.HighFreqFactor:
		return 1
	case wave > s.OriginalMax/s.LowFreqFactor:
		return 0
	}
	return (s.OriginalMax/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
}

// Divisors returns, per rotated pair i, what the scaling divides the base
// inverse frequency theta^(-2i/rotDim) by, as GGUF files store it in
// rope_freqs.weight.
func (s Llama3Scaling) Divisors(theta float64, rotDim int) []float32 {
	div := make([]float32, rotDim/2)
	for i := range div {
		switch k := s.keep(1 / math.Pow(theta, float64(2*i)/float64(rotDim))); k {
		case 1:
			div[i] = 1
		case 0:
			div[i] = float32(s.Factor)
		default:
			div[i] = float32(1 / ((1-k)/s.Factor + k))
		}
	}
	return div
}

// newRoPE computes the inverse frequencies of one parameter set the way
// transformers' rope initialisation functions define them.
func newRoPE(p ropeParam, rotDim, maxPos, origMax int) (*RoPE, error) {
	typ := p.Type
	if typ == "" {
		typ = p.OldType
	}
	if typ == "" {
		typ = "default"
	}
	if p.theta <= 0 {
		return nil, fmt.Errorf("rope_theta %g must be positive", p.theta)
	}
	half := rotDim / 2
	base := make([]float64, half)
	for i := range base {
		base[i] = 1 / math.Pow(p.theta, float64(2*i)/float64(rotDim))
	}
	r := &RoPE{Type: typ, Mscale: 1}
	toF32 := func(v []float64) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	factor := 1.0
	if p.Factor != nil {
		factor = *p.Factor
	}
	switch typ {
	case "default":
		r.InvFreq = toF32(base)
	case "linear":
		if factor <= 0 {
			return nil, fmt.Errorf("rope linear factor %g must be positive", factor)
		}
		for i := range base {
			base[i] /= factor
		}
		r.InvFreq = toF32(base)
	case "llama3":
		// Llama 3.1: long wavelengths are slowed by factor, short ones kept,
		// and the band between interpolates smoothly.
		low, high := 1.0, 4.0
		if p.LowFreqFactor != nil {
			low = *p.LowFreqFactor
		}
		if p.HighFreqFactor != nil {
			high = *p.HighFreqFactor
		}
		l3 := Llama3Scaling{Factor: factor, LowFreqFactor: low, HighFreqFactor: high, OriginalMax: float64(p.OriginalMax)}
		if l3.OriginalMax <= 0 || factor <= 0 || high <= low {
			return nil, fmt.Errorf("rope llama3: bad parameters factor=%g low=%g high=%g original_max=%g", factor, low, high, l3.OriginalMax)
		}
		for i, f := range base {
			k := l3.keep(f)
			base[i] = (1-k)*f/factor + k*f
		}
		r.InvFreq = toF32(base)
	case "longrope", "su":
		if p.OriginalMax > 0 {
			origMax = p.OriginalMax
		}
		if origMax <= 0 {
			return nil, fmt.Errorf("rope longrope needs original_max_position_embeddings")
		}
		if len(p.ShortFactor) != half || len(p.LongFactor) != half {
			return nil, fmt.Errorf("rope longrope: short_factor/long_factor have %d/%d entries, want %d", len(p.ShortFactor), len(p.LongFactor), half)
		}
		scale := float64(maxPos) / float64(origMax)
		attn := 1.0
		if p.AttnFactor != nil {
			attn = *p.AttnFactor
		} else if scale > 1 {
			attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(origMax)))
		}
		short, long := make([]float64, half), make([]float64, half)
		for i, f := range base {
			short[i] = f / p.ShortFactor[i]
			long[i] = f / p.LongFactor[i]
		}
		r.InvFreq, r.LongInvFreq = toF32(short), toF32(long)
		r.OriginalMax, r.Mscale = origMax, float32(attn)
	case "yarn":
		if err := yarn(r, p, base, factor, rotDim, maxPos); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported rope type %q", typ)
	}
	return r, nil
}

// yarn implements YaRN (Peng et al. 2023) as transformers parameterises it:
// dimensions that rotate more than beta_fast times over the original context
// keep their frequency, those that rotate fewer than beta_slow times are
// interpolated by factor, a linear ramp blends the band between, and cos/sin
// are scaled by 0.1*ln(factor)+1 (or the mscale ratio DeepSeek configs give).
func yarn(r *RoPE, p ropeParam, base []float64, factor float64, rotDim, maxPos int) error {
	orig := float64(maxPos)
	if p.OriginalMax > 0 {
		orig = float64(p.OriginalMax)
	}
	if factor <= 0 || orig <= 0 {
		return fmt.Errorf("rope yarn: bad parameters factor=%g original_max=%g", factor, orig)
	}
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	attn := mscale(factor, 1)
	switch {
	case p.AttnFactor != nil:
		attn = *p.AttnFactor
	case p.YarnMscale != nil && p.YarnMscaleAll != nil && *p.YarnMscale != 0 && *p.YarnMscaleAll != 0:
		attn = mscale(factor, *p.YarnMscale) / mscale(factor, *p.YarnMscaleAll)
	}
	fast, slow := 32.0, 1.0
	if p.BetaFast != nil {
		fast = *p.BetaFast
	}
	if p.BetaSlow != nil {
		slow = *p.BetaSlow
	}
	dim := float64(rotDim)
	correction := func(rotations float64) float64 {
		return dim * math.Log(orig/(rotations*2*math.Pi)) / (2 * math.Log(p.theta))
	}
	lo, hi := correction(fast), correction(slow)
	if p.Truncate == nil || *p.Truncate {
		lo, hi = math.Floor(lo), math.Ceil(hi)
	}
	lo, hi = math.Max(lo, 0), math.Min(hi, dim-1)
	if lo == hi {
		hi += 0.001
	}
	for i, f := range base {
		ramp := math.Min(math.Max((float64(i)-lo)/(hi-lo), 0), 1)
		keep := 1 - ramp // weight of the original (extrapolated) frequency
		base[i] = f/factor*(1-keep) + f*keep
	}
	r.InvFreq = make([]float32, len(base))
	for i, f := range base {
		r.InvFreq[i] = float32(f)
	}
	r.Mscale = float32(attn)
	return nil
}
