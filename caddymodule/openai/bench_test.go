package openai

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkDecodeChatRequest decodes a 1000-message conversation (~1 MiB)
// with tools, the size of a long agent session.
func BenchmarkDecodeChatRequest(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"model":"m","messages":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":"` + strings.Repeat("word ", 200) + `"}`)
	}
	sb.WriteString(`],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}}}}}]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, e := DecodeChatRequest(bytes.NewReader(body), Limits{}); e != nil {
			b.Fatal(e)
		}
	}
}
