package sample

// rng is xoshiro256** seeded through splitmix64. It is written out here rather
// than taken from math/rand so that a seeded request draws the same stream on
// every platform and Go release: the algorithms are fixed integer arithmetic.
type rng struct{ s [4]uint64 }

// splitmix64 advances *x and returns the next output; used only to expand one
// 64-bit seed into the four words of xoshiro state (never all zero).
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func newRNG(seed uint64) rng {
	var r rng
	x := seed
	for i := range r.s {
		r.s[i] = splitmix64(&x)
	}
	return r
}

func rotl(x uint64, k uint) uint64 { return x<<k | x>>(64-k) }

// Uint64 returns the next 64 random bits.
func (r *rng) Uint64() uint64 {
	s := &r.s
	out := rotl(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = rotl(s[3], 45)
	return out
}

// Float64 returns a uniform value in [0, 1) with 53 random bits.
func (r *rng) Float64() float64 {
	return float64(r.Uint64()>>11) * (1.0 / (1 << 53))
}

// ChoiceSeed is the seed of choice i of a request seeded with seed (n > 1).
// Choice 0 keeps the seed itself, so n=1 and n>1 agree on the first choice.
// Every other choice hashes (seed, i) through two splitmix64 rounds, so its
// stream is unrelated to any request's own seed: seed+i, the obvious
// derivation, would make choice i repeat choice 0 of the request at seed+i.
func ChoiceSeed(seed uint64, choice int) uint64 {
	if choice == 0 {
		return seed
	}
	x := seed
	h := splitmix64(&x)
	y := h ^ uint64(choice)*0xd1b54a32d192ed03
	return splitmix64(&y)
}
