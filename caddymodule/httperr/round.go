package httperr

// RoundTo rounds v to the given number of decimal digits, half away from
// zero, for the figures of /api bodies.
func RoundTo(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}
