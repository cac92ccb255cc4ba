package inference

import (
	"errors"
	"fmt"
)

// The sentinel errors of the engine, for errors.Is: callers (the HTTP
// layer) map them to status codes.

// ErrContextOverflow is returned when a prompt plus its max_tokens cannot fit
// the model's context.
var ErrContextOverflow = errors.New("context length exceeded")

// ErrUnloaded ends streams of a model that is being unloaded.
var ErrUnloaded = errors.New("model unloaded")

// ErrQueueFull is returned by Generate when the model's admission queue is
// full: the server is saturated and the client should retry later (HTTP 429
// with Retry-After).
var ErrQueueFull = errors.New("too many requests queued")

// ErrShuttingDown is returned by Generate, and ends streams, while the engine
// shuts down (HTTP 503).
var ErrShuttingDown = errors.New("engine shutting down")

// ErrTooLarge is returned by Generate for a request whose prompt plus
// max_tokens needs more KV memory than the engine's whole budget, so it could
// never run. Its errors also match ErrContextOverflow: to a client the
// budget is a smaller context.
var ErrTooLarge = errors.New("request exceeds the KV cache budget")

// errShutdown ends streams and refuses requests during shutdown; it matches
// both ErrShuttingDown and ErrUnloaded (the model goes away with the engine).
var errShutdown = fmt.Errorf("%w: %w", ErrShuttingDown, ErrUnloaded)

// ErrUnloading is returned for requests to a model that is draining before
// an unload. It wraps ErrUnloaded.
var ErrUnloading = fmt.Errorf("%w: unload in progress, retry later", ErrUnloaded)

// ErrTooManyModels is returned by Load when Options.MaxLoadedModels models
// are loaded and none of them is idle, so none can be evicted to make room.
var ErrTooManyModels = errors.New("too many models loaded")

// ErrModelBusy is returned by a graceful UnloadModel whose wait ran out
// while sequences were still running; the model stays loaded and serving.
var ErrModelBusy = errors.New("model busy")

// ErrModelNotFound is returned for an id that names no model in the models directory.
var ErrModelNotFound = errors.New("model not found")

// ErrFormatUnsupported is returned for a model whose storage format the
// engine cannot run yet.
var ErrFormatUnsupported = errors.New("model format not supported")
