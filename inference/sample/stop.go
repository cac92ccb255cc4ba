package sample

import "strings"

// StopMatcher watches streamed text for the request's stop strings. Text is
// released only once it can no longer be the start of a stop string, so a
// stop split across token boundaries is never partly sent to the client, and
// the stop string itself is never emitted (OpenAI semantics).
//
// Generation halts at the earliest point where any stop string is complete.
// The text is cut at the start of that occurrence; when several stops end at
// the same byte, the longest (earliest-starting) one wins. Because the
// decision depends only on the concatenated text, not on how it was split
// into deltas, streamed and non-streamed responses agree. (This differs from
// "cut at the first occurrence" only when one stop string sits inside a
// longer one, e.g. "bc" in "abcd": "abc" already stops at "bc".)
type StopMatcher struct {
	stops   []string
	maxLen  int
	held    string // suffix that may still begin a stop string
	stopped bool
}

// NewStopMatcher returns a matcher for stops. Empty strings are ignored (they
// would stop before any output); with no stops every Push passes text through.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s == "" {
			continue
		}
		m.stops = append(m.stops, s)
		m.maxLen = max(m.maxLen, len(s))
	}
	return m
}

// Push feeds the next decoded text delta. It returns the text that is now safe
// to emit and whether a stop string has completed; once stopped, further
// pushes return ("", true).
func (m *StopMatcher) Push(text string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	if len(m.stops) == 0 {
		return text, false
	}
	buf := m.held + text

	// Earliest end over all stops; each stop's first occurrence is its earliest end.
	cut, end := -1, -1
	for _, s := range m.stops {
		i := strings.Index(buf, s)
		if i < 0 {
			continue
		}
		if e := i + len(s); end < 0 || e < end || (e == end && i < cut) {
			cut, end = i, e
		}
	}
	if cut >= 0 {
		m.stopped = true
		m.held = ""
		return buf[:cut], true
	}

	// Hold back the longest suffix that is a proper prefix of some stop.
	hold := 0
	for k := min(len(buf), m.maxLen-1); k > 0; k-- {
		if m.isStopPrefix(buf[len(buf)-k:]) {
			hold = k
			break
		}
	}
	m.held = buf[len(buf)-hold:]
	return buf[:len(buf)-hold], false
}

func (m *StopMatcher) isStopPrefix(s string) bool {
	for _, stop := range m.stops {
		if len(s) < len(stop) && strings.HasPrefix(stop, s) {
			return true
		}
	}
	return false
}

// Flush returns the held-back text at the end of generation (the model ended
// without completing a stop string); it is empty after a stop.
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}

// Stopped reports whether a stop string has completed.
func (m *StopMatcher) Stopped() bool { return m.stopped }
