package sample

import "math"

// exp32 returns e^x for x ≤ 0 in float32, within about 2 ulp, several times
// faster than math.Exp; sampling calls it once per vocabulary entry. Results
// below the smallest normal float32 (x < -87.3, and -Inf) are 0.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125 // ln 2 split so that n*ln2hi is exact
		ln2lo = 1.42860682030941723212e-6
	)
	if !(x >= -87.3) { // also catches NaN
		return 0
	}
	// x = n·ln2 + r with |r| ≤ ln2/2, so e^x = 2^n · e^r.
	n := float32(int32(x*log2e - 0.5))
	r := x - n*ln2hi - n*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
