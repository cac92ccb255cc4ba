package manage

import (
	"reflect"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// wireSchemas are the schemas of types that write their own JSON, transcribed
// from their MarshalJSON methods (the openai package's response.go and errors.go).
// TestWireSchemasMatchEncodings checks real encodings against them.
var wireSchemas map[string]func(g *schemaGen) map[string]any

func init() {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	nullStr := map[string]any{"type": []any{"string", "null"}}
	obj := func(required []string, props map[string]any) map[string]any {
		r := make([]any, len(required))
		for i, s := range required {
			r[i] = s
		}
		return map[string]any{"type": "object", "required": r, "properties": props}
	}
	arr := func(items any) map[string]any { return map[string]any{"type": "array", "items": items} }
	of := func(g *schemaGen, v any) map[string]any { return g.schema(reflect.TypeOf(v)) }
	finish := map[string]any{"type": []any{"string", "null"}, "description": "stop, length, tool_calls or content_filter; null until the choice ends (streams)."}

	wireSchemas = map[string]func(g *schemaGen) map[string]any{
		"Logprob": func(*schemaGen) map[string]any {
			return map[string]any{"type": []any{"number", "null"}, "description": "Log probability; -9999 for a token the sampler ruled out, null where none exists (the first echoed token)."}
		},
		"TokenLogprob": func(g *schemaGen) map[string]any {
			return obj([]string{"token", "logprob", "bytes", "top_logprobs"}, map[string]any{
				"token": str, "logprob": of(g, openai.Logprob(0)),
				"bytes":        map[string]any{"type": []any{"array", "null"}, "items": integer},
				"top_logprobs": arr(of(g, openai.TopLogprob{})),
			})
		},
		"ChoiceLogprobs": func(g *schemaGen) map[string]any {
			return obj([]string{"content", "refusal"}, map[string]any{
				"content": arr(of(g, openai.TokenLogprob{})),
				"refusal": map[string]any{"type": []any{"array", "null"}, "items": of(g, openai.TokenLogprob{})},
			})
		},
		"ResponseMessage": func(g *schemaGen) map[string]any {
			return obj([]string{"role", "content", "refusal"}, map[string]any{
				"role": map[string]any{"const": "assistant"}, "content": nullStr, "refusal": nullStr,
				"tool_calls":        arr(of(g, openai.ToolCall{})),
				"reasoning_content": str,
			})
		},
		"Model": func(*schemaGen) map[string]any {
			return obj([]string{"id", "object", "created", "owned_by", "permission", "root", "parent"}, map[string]any{
				"id": str, "object": map[string]any{"const": "model"}, "created": integer, "owned_by": str,
				"permission": arr(str), "root": str, "parent": nullStr,
				"kind": map[string]any{"type": "string", "enum": []any{"chat", "embedding"}, "description": "What the model serves: chat (/v1/chat/completions, /v1/completions) or embedding (/v1/embeddings). Local models only."},
			})
		},
		"EmbeddingList": func(g *schemaGen) map[string]any {
			item := obj([]string{"object", "index", "embedding"}, map[string]any{
				"object": map[string]any{"const": "embedding"}, "index": integer,
				"embedding": map[string]any{"description": "The vector: numbers, or with encoding_format base64 the base64 of its little-endian float32 bytes.",
					"anyOf": []any{arr(map[string]any{"type": "number"}), str}},
			})
			return obj([]string{"object", "data", "model", "usage"}, map[string]any{
				"object": map[string]any{"const": "list"}, "data": arr(item), "model": str,
				"usage": obj([]string{"prompt_tokens", "total_tokens"}, map[string]any{"prompt_tokens": integer, "total_tokens": integer}),
			})
		},
		"ModelList": func(g *schemaGen) map[string]any {
			return obj([]string{"object", "data"}, map[string]any{
				"object": map[string]any{"const": "list"}, "data": arr(of(g, openai.Model{})),
			})
		},
		"ChatCompletion": func(g *schemaGen) map[string]any {
			return obj([]string{"id", "object", "created", "model", "choices", "usage"}, map[string]any{
				"id": str, "object": map[string]any{"const": "chat.completion"}, "created": integer, "model": str,
				"choices": arr(of(g, openai.ChatChoice{})), "usage": of(g, openai.Usage{}),
				"system_fingerprint": str, "conversation_id": str,
				"performance_metrics": of(g, openai.PerformanceMetrics{}),
			})
		},
		"ChunkChoice": func(g *schemaGen) map[string]any {
			return obj([]string{"index", "delta", "logprobs", "finish_reason"}, map[string]any{
				"index": integer, "delta": of(g, openai.Delta{}), "logprobs": of(g, &openai.ChoiceLogprobs{}), "finish_reason": finish,
			})
		},
		"ChatCompletionChunk": func(g *schemaGen) map[string]any {
			return obj([]string{"id", "object", "created", "model", "choices"}, map[string]any{
				"id": str, "object": map[string]any{"const": "chat.completion.chunk"}, "created": integer, "model": str,
				"system_fingerprint": str, "choices": arr(of(g, openai.ChunkChoice{})),
				"usage":           of(g, &openai.Usage{}),
				"conversation_id": str, "performance_metrics": of(g, openai.PerformanceMetrics{}),
			})
		},
		"TextLogprobs": func(g *schemaGen) map[string]any {
			return obj([]string{"tokens", "token_logprobs", "top_logprobs", "text_offset"}, map[string]any{
				"tokens": arr(str), "token_logprobs": arr(of(g, openai.Logprob(0))),
				"top_logprobs": arr(map[string]any{"type": []any{"object", "null"}, "additionalProperties": of(g, openai.Logprob(0))}),
				"text_offset":  arr(integer),
			})
		},
		"TextChoice": func(g *schemaGen) map[string]any {
			return obj([]string{"text", "index", "logprobs", "finish_reason"}, map[string]any{
				"text": str, "index": integer, "logprobs": of(g, &openai.TextLogprobs{}), "finish_reason": finish,
			})
		},
		"TextCompletion": func(g *schemaGen) map[string]any {
			return obj([]string{"id", "object", "created", "model", "choices"}, map[string]any{
				"id": str, "object": map[string]any{"const": "text_completion"}, "created": integer, "model": str,
				"system_fingerprint": str, "choices": arr(of(g, openai.TextChoice{})),
				"usage": map[string]any{"description": "Always present when not streaming; in a stream as for chat chunks.", "anyOf": []any{of(g, openai.Usage{}), map[string]any{"type": "null"}}},
			})
		},
		"Error": func(g *schemaGen) map[string]any {
			return obj([]string{"error"}, map[string]any{"error": obj([]string{"message", "type", "param", "code"}, map[string]any{
				"message": str, "type": str, "param": nullStr, "code": nullStr,
			})})
		},
	}
}
