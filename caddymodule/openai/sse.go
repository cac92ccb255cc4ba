package openai

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SSE writes a text/event-stream response in OpenAI's framing: each event is
// "data: <json>\n\n" and the stream ends with "data: [DONE]\n\n". It flushes
// after every event through http.ResponseController, because Caddy's writer
// wrappers implement FlushError and Unwrap but not http.Flusher. Methods
// are safe for concurrent use (e.g. a keep-alive ticker beside the
// generator). After a write or flush fails, every later call
// returns that first error: the client is gone and generation should stop.
type SSE struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

// NewSSE sets the stream headers, sends the 200 status and flushes it so the
// client sees the response start before the first token (prefill can take a
// while). Write any error response before calling it: after this the status
// is committed and failures must go through Error.
func NewSSE(w http.ResponseWriter) *SSE {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	s := &SSE{w: w, rc: http.NewResponseController(w)}
	w.WriteHeader(http.StatusOK)
	s.mu.Lock()
	s.flushLocked()
	s.mu.Unlock()
	return s
}

// Send writes v as one data event.
func (s *SSE) Send(v any) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	return s.write("data: ", b, "\n\n")
}

// Done writes the terminating "data: [DONE]" event.
func (s *SSE) Done() error { return s.write("data: [DONE]", nil, "\n\n") }

// Error writes a mid-stream failure as an event holding OpenAI's error
// object, {"error":{...}}. Follow it with Done if the stream should end
// normally for clients that wait for [DONE].
func (s *SSE) Error(e *Error) error {
	if e == nil {
		e = Internal("internal error")
	}
	b, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding error event: %w", err)
	}
	return s.write("data: ", b, "\n\n")
}

// Comment writes an SSE comment line (": text"), which clients ignore; use it
// as a keep-alive during long prefill so that proxies and idle timeouts do
// not cut the stream. Newlines in text are replaced by spaces.
func (s *SSE) Comment(text string) error {
	text = strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
	return s.write(": ", []byte(text), "\n\n")
}

// KeepAlive sends a ": ping" comment every interval until stop is called,
// ctx ends or a write fails, so that a long prefill does not trip idle
// timeouts in proxies and clients. stop waits for the pinger to exit, so no
// ping follows it.
func (s *SSE) KeepAlive(ctx context.Context, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s.Comment("ping") != nil {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// Err returns the first write or flush error, or nil.
func (s *SSE) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *SSE) write(prefix string, body []byte, suffix string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	var buf bytes.Buffer
	buf.Grow(len(prefix) + len(body) + len(suffix))
	buf.WriteString(prefix)
	buf.Write(body)
	buf.WriteString(suffix)
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		s.err = fmt.Errorf("writing event: %w", err)
		return s.err
	}
	return s.flushLocked()
}

func (s *SSE) flushLocked() error {
	if err := s.rc.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("flushing event: %w", err)
	}
	return s.err
}
