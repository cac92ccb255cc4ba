package openai

// Limits bound what one request may ask for, so that a single client cannot
// make the decoder or the engine do unbounded work. A zero field takes its
// default; the defaults are policy choices, not measurements, and operators
// may change them in configuration.
type Limits struct {
	// MaxBodyBytes caps the request body. Default 8 MiB: ample for long
	// text conversations with tool schemas; Impetus takes no image or audio
	// payloads that would need more.
	MaxBodyBytes int64
	// MaxMessages caps len(messages). Default 1024.
	MaxMessages int
	// MaxN caps n (and best_of for completions): each choice is a separate
	// sequence in the engine. Default 16.
	MaxN int
	// MaxTokens caps max_tokens and max_completion_tokens. Default 32768; the
	// server further caps generation by the model's context length.
	MaxTokens int
	// MaxStop caps the number of stop sequences. Default 4, OpenAI's limit.
	MaxStop int
	// MaxStopBytes caps the length of each stop sequence in bytes. Default 256.
	MaxStopBytes int
	// MaxTools caps len(tools). Default 128, OpenAI's documented limit on
	// functions.
	MaxTools int
	// MaxSchemaBytes caps each tool's parameters schema and the
	// response_format json_schema schema, in bytes of raw JSON. Default 64 KiB.
	MaxSchemaBytes int
	// MaxPrompts caps the number of prompts in one /v1/completions request
	// (prompt as an array); each prompt yields n choices. Default 16.
	MaxPrompts int
	// MaxLogitBias caps the number of logit_bias entries, which the sampler
	// applies at every step. Default 1024.
	MaxLogitBias int
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:   8 << 20,
		MaxMessages:    1024,
		MaxN:           16,
		MaxTokens:      32768,
		MaxStop:        4,
		MaxStopBytes:   256,
		MaxTools:       128,
		MaxSchemaBytes: 64 << 10,
		MaxPrompts:     16,
		MaxLogitBias:   1024,
	}
}

// withDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = d.MaxMessages
	}
	if l.MaxN <= 0 {
		l.MaxN = d.MaxN
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = d.MaxTokens
	}
	if l.MaxStop <= 0 {
		l.MaxStop = d.MaxStop
	}
	if l.MaxStopBytes <= 0 {
		l.MaxStopBytes = d.MaxStopBytes
	}
	if l.MaxTools <= 0 {
		l.MaxTools = d.MaxTools
	}
	if l.MaxSchemaBytes <= 0 {
		l.MaxSchemaBytes = d.MaxSchemaBytes
	}
	if l.MaxPrompts <= 0 {
		l.MaxPrompts = d.MaxPrompts
	}
	if l.MaxLogitBias <= 0 {
		l.MaxLogitBias = d.MaxLogitBias
	}
	return l
}
