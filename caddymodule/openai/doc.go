// Package openai is the OpenAI wire contract for Impetus: strict request
// decoding with OpenAI-shaped errors, response and stream-chunk types whose
// JSON matches OpenAI's nulls and omissions, and an SSE writer that flushes
// through wrapped ResponseWriters.
//
// It imports only the standard library so that the Caddy handler, tests and
// tools can share it without pulling in Caddy or the engine. It checks syntax
// and ranges only; whether a valid field is implemented (for example
// response_format or reasoning_effort) is the server's decision, made from the
// decoded structs and [ChatRequest.Has], and refused with [Unsupported].
//
// Requests: [DecodeChatRequest] and [DecodeCompletionRequest] read a body
// under [Limits] and return the request or a 400/413 [*Error] naming the
// offending field by path ("messages[1].content"). Unknown fields are
// refused at every level, duplicate keys too, and JSON null counts as
// absent.
//
// Responses: [ChatCompletion], [TextCompletion], [ModelList] and [Model] are
// written with [WriteJSON]; errors with [WriteError]. Streams use [NewSSE]
// with chunks stamped by a [ChatStream] or [TextStream], which keep id,
// created, model and the usage mode consistent.
//
// Checks for tests live in the openaitest package: its ParseSSE with
// CheckChatStream or CheckTextStream verifies a recorded stream against
// OpenAI's framing and chunk rules.
package openai
