package openai

import (
	"regexp"
	"testing"
	"time"
)

func TestIDs(t *testing.T) {
	tests := []struct {
		gen  func() string
		want *regexp.Regexp
	}{
		{NewChatID, regexp.MustCompile(`^chatcmpl-[A-Za-z0-9]{29}$`)},
		{NewCompletionID, regexp.MustCompile(`^cmpl-[A-Za-z0-9]{29}$`)},
		{NewToolCallID, regexp.MustCompile(`^call_[A-Za-z0-9]{24}$`)},
		{NewConversationID, regexp.MustCompile(`^chat-[A-Za-z0-9]{16}$`)},
	}
	for _, tt := range tests {
		seen := map[string]bool{}
		for i := 0; i < 1000; i++ {
			id := tt.gen()
			if !tt.want.MatchString(id) {
				t.Fatalf("%q does not match %s", id, tt.want)
			}
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = true
		}
	}
}

func TestIDAlphabetUniform(t *testing.T) {
	// Each of the 62 characters appears; with 62k draws a missing one would
	// mean a broken mapping, not bad luck.
	counts := map[byte]int{}
	for i := 0; i < 2000; i++ {
		for _, c := range []byte(randomID("", 31)) {
			counts[c]++
		}
	}
	if len(counts) != len(idAlphabet) {
		t.Errorf("saw %d distinct characters, want %d", len(counts), len(idAlphabet))
	}
}

func TestCreated(t *testing.T) {
	before := time.Now().Unix()
	c := Created()
	if c < before || c > time.Now().Unix() {
		t.Errorf("Created() = %d", c)
	}
}
