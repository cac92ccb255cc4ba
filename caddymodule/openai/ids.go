package openai

import (
	"crypto/rand"
	"time"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns prefix followed by n random letters and digits from
// crypto/rand, so ids are unguessable and unique without coordination.
func randomID(prefix string, n int) string {
	out := make([]byte, len(prefix)+n)
	copy(out, prefix)
	buf := make([]byte, n)
	for filled := 0; filled < n; {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+)
		for _, b := range buf {
			// 248 = 4*62: reject the top bytes so each character is uniform.
			if b >= 248 {
				continue
			}
			out[len(prefix)+filled] = idAlphabet[int(b)%len(idAlphabet)]
			filled++
			if filled == n {
				break
			}
		}
	}
	return string(out)
}

// NewChatID returns a chat completion id, "chatcmpl-" plus 29 characters as
// OpenAI's ids have.
func NewChatID() string { return randomID("chatcmpl-", 29) }

// NewCompletionID returns a text completion id, "cmpl-" plus 29 characters.
func NewCompletionID() string { return randomID("cmpl-", 29) }

// NewToolCallID returns a tool call id, "call_" plus 24 characters.
func NewToolCallID() string { return randomID("call_", 24) }

// NewConversationID returns a conversation id for a request that sent none,
// "chat-" plus 16 characters.
func NewConversationID() string { return randomID("chat-", 16) }

// Created returns the Unix time in seconds for a response's created field.
func Created() int64 { return time.Now().Unix() }
