// Package openai is the OpenAI wire contract for Impetus: strict request
// decoding with OpenAI-shaped errors, response and stream-chunk types whose
// JSON matches OpenAI's nulls and omissions, and an SSE writer that flushes
// through wrapped ResponseWriters.
//
// It imports only the standard library so that the Caddy handler, tests and
// tools can share it without pulling in Caddy or the engine. It checks syntax
// and ranges only; whether a valid field is implemented (for example
// response_format or reasoning_effort) is the server's decision, made from the
// decoded structs and [ChatRequest.Has].
package openai
