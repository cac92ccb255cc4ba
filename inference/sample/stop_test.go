package sample

import (
	"strings"
	"testing"
)

// stopReference is the naive definition: scan the whole text for the first
// byte at which some stop string ends, and cut at the start of the longest
// stop ending there.
func stopReference(text string, stops []string) (string, bool) {
	for e := 1; e <= len(text); e++ {
		cut := -1
		for _, s := range stops {
			if s != "" && strings.HasSuffix(text[:e], s) && (cut < 0 || e-len(s) < cut) {
				cut = e - len(s)
			}
		}
		if cut >= 0 {
			return text[:cut], true
		}
	}
	return text, false
}

// runStops pushes deltas and returns everything emitted (plus Flush when not
// stopped), checking along the way that text is released as early as possible.
func runStops(t *testing.T, stops []string, deltas []string) (string, bool) {
	t.Helper()
	m := NewStopMatcher(stops)
	var out, seen strings.Builder
	for _, d := range deltas {
		seen.WriteString(d)
		emit, stopped := m.Push(d)
		out.WriteString(emit)
		if stopped {
			return out.String(), true
		}
		// Everything but the longest suffix that could begin a stop is out.
		all := seen.String()
		held := 0
		for k := len(all); k > 0; k-- {
			for _, s := range stops {
				if s != "" && len(s) > k && strings.HasPrefix(s, all[len(all)-k:]) {
					held = max(held, k)
				}
			}
		}
		if want := all[:len(all)-held]; out.String() != want {
			t.Fatalf("after %q emitted %q, want %q", all, out.String(), want)
		}
	}
	out.WriteString(m.Flush())
	return out.String(), false
}

func TestStopMatcher(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stops   []string
		deltas  []string
		want    string
		stopped bool
	}{
		{"no stops", nil, []string{"hello", " world"}, "hello world", false},
		{"whole stop in one delta", []string{"END"}, []string{"abcEND", "more"}, "abc", true},
		{"stop across deltas", []string{"</s>"}, []string{"hi <", "/", "s", "> tail"}, "hi ", true},
		{"false start is released", []string{"</s>"}, []string{"a </", "b> c"}, "a </b> c", false},
		{"held text flushed at end", []string{"STOP"}, []string{"go ST"}, "go ST", false},
		{"overlapping prefixes ab and abc", []string{"abc", "ab"}, []string{"xa", "bc"}, "x", true},
		{"shorter stop ends first", []string{"abcd", "bc"}, []string{"a", "b", "c", "d"}, "a", true},
		{"same end: longest wins", []string{"bc", "abc"}, []string{"zabc"}, "z", true},
		{"self-overlapping stop", []string{"aab"}, []string{"aa", "aab"}, "aa", true},
		{"unicode stop", []string{"→end"}, []string{"naïve ", "\u2192", "en", "d!"}, "naïve ", true},
		{"unicode text kept whole", []string{"日本"}, []string{"日", "曜"}, "日曜", false},
		{"empty stop ignored", []string{""}, []string{"abc"}, "abc", false},
		{"stop at the very start", []string{"x"}, []string{"xyz"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stopped := runStops(t, tc.stops, tc.deltas)
			if got != tc.want || stopped != tc.stopped {
				t.Errorf("got %q stopped=%v, want %q stopped=%v", got, stopped, tc.want, tc.stopped)
			}
			ref, refStopped := stopReference(strings.Join(tc.deltas, ""), tc.stops)
			if ref != got || refStopped != stopped {
				t.Errorf("reference gives %q stopped=%v", ref, refStopped)
			}
		})
	}
}

func TestStopMatcherAfterStop(t *testing.T) {
	m := NewStopMatcher([]string{"."})
	if emit, stopped := m.Push("one. two"); emit != "one" || !stopped {
		t.Fatalf("Push = %q, %v", emit, stopped)
	}
	if emit, stopped := m.Push("more"); emit != "" || !stopped || !m.Stopped() {
		t.Errorf("Push after stop = %q, %v", emit, stopped)
	}
	if f := m.Flush(); f != "" {
		t.Errorf("Flush after stop = %q", f)
	}
}

// FuzzStopMatcher splits text into deltas at fuzzer-chosen points and checks
// the streamed result against the naive reference on the concatenation.
func FuzzStopMatcher(f *testing.F) {
	f.Add("hello </s> world", "</s>", uint64(1))
	f.Add("ababcabc", "abc\x00ab", uint64(2))
	f.Add("aaab", "aab\x00b", uint64(3))
	f.Add("x日本語y", "本語\x00語y", uint64(4))
	f.Fuzz(func(t *testing.T, text, stopList string, seed uint64) {
		stops := strings.Split(stopList, "\x00")
		if len(stops) > 4 {
			stops = stops[:4]
		}
		r := newRNG(seed)
		var deltas []string
		for rest := text; rest != ""; {
			n := 1 + int(r.Uint64()%uint64(min(len(rest), 5)))
			deltas = append(deltas, rest[:n])
			rest = rest[n:]
		}
		got, stopped := runStops(t, stops, deltas)
		want, wantStopped := stopReference(text, stops)
		if got != want || stopped != wantStopped {
			t.Fatalf("stops %q deltas %q: got %q stopped=%v, want %q stopped=%v",
				stops, deltas, got, stopped, want, wantStopped)
		}
	})
}
