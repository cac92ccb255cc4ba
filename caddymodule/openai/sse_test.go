package openai

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// caddyLikeWriter imitates Caddy's response-writer wrappers: it offers
// FlushError and Unwrap but not http.Flusher.
type caddyLikeWriter struct {
	inner   http.ResponseWriter
	flushes int
	// bodyAtFlush records the bytes written so far at each flush.
	bodyAtFlush []string
	written     strings.Builder
	failWrite   bool
}

func (w *caddyLikeWriter) Header() http.Header  { return w.inner.Header() }
func (w *caddyLikeWriter) WriteHeader(code int) { w.inner.WriteHeader(code) }
func (w *caddyLikeWriter) Write(b []byte) (int, error) {
	if w.failWrite {
		return 0, errors.New("broken pipe")
	}
	w.written.Write(b)
	return w.inner.Write(b)
}
func (w *caddyLikeWriter) FlushError() error {
	w.flushes++
	w.bodyAtFlush = append(w.bodyAtFlush, w.written.String())
	return nil
}
func (w *caddyLikeWriter) Unwrap() http.ResponseWriter { return w.inner }

var _ interface{ FlushError() error } = (*caddyLikeWriter)(nil)

func TestSSEThroughCaddyLikeWriter(t *testing.T) {
	if _, ok := any(&caddyLikeWriter{}).(http.Flusher); ok {
		t.Fatal("test writer must not implement http.Flusher")
	}
	rec := httptest.NewRecorder()
	w := &caddyLikeWriter{inner: rec}
	s := NewSSE(w)
	if w.flushes != 1 || w.bodyAtFlush[0] != "" {
		t.Fatalf("headers not flushed at start: %d flushes", w.flushes)
	}
	st := ChatStream{ID: "chatcmpl-x", Created: 1, Model: "m", IncludeUsage: true}
	steps := []func() error{
		func() error { return s.Send(st.Chunk(ChunkChoice{Delta: RoleDelta()})) },
		func() error { return s.Send(st.Chunk(ChunkChoice{Delta: TextDelta("a<b")})) },
		func() error { return s.Comment("keep\nalive") },
		func() error { return s.Send(st.Chunk(ChunkChoice{FinishReason: FinishStop})) },
		func() error { return s.Send(st.UsageChunk(NewUsage(1, 2))) },
		s.Done,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		// Every event is flushed as soon as it is written.
		if w.flushes != i+2 || w.bodyAtFlush[i+1] != w.written.String() {
			t.Fatalf("step %d: %d flushes, last saw %q", i, w.flushes, w.bodyAtFlush[len(w.bodyAtFlush)-1])
		}
	}
	want := `data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a<b"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
		": keep alive\n\n" +
		`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}` + "\n\n" +
		"data: [DONE]\n\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
	// openaitest.TestWriterStreamParses reads this same stream back as a
	// client does.
	h := rec.Header()
	if rec.Code != 200 || h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
		t.Errorf("status %d headers %v", rec.Code, h)
	}
}

func TestSSEErrorEvent(t *testing.T) {
	rec := httptest.NewRecorder()
	s := NewSSE(rec)
	if err := s.Error(Unavailable("server is shutting down")); err != nil {
		t.Fatal(err)
	}
	if err := s.Error(nil); err != nil {
		t.Fatal(err)
	}
	want := `data: {"error":{"message":"server is shutting down","type":"server_error","param":null,"code":"service_unavailable"}}` + "\n\n" +
		`data: {"error":{"message":"internal error","type":"server_error","param":null,"code":null}}` + "\n\n"
	if rec.Body.String() != want {
		t.Errorf("got %q", rec.Body)
	}
	if err := s.Send(func() {}); err == nil {
		t.Errorf("unencodable value accepted")
	}
}

func TestSSEStickyWriteError(t *testing.T) {
	w := &caddyLikeWriter{inner: httptest.NewRecorder()}
	s := NewSSE(w)
	w.failWrite = true
	err := s.Send(map[string]int{"a": 1})
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("got %v", err)
	}
	w.failWrite = false
	if err2 := s.Done(); err2 != err || s.Err() != err {
		t.Errorf("later calls must return the first error: %v", err2)
	}
}

// noFlushWriter supports no flushing at all; SSE must report it rather than
// buffer silently.
type noFlushWriter struct{ http.ResponseWriter }

func TestSSEUnflushableWriter(t *testing.T) {
	s := NewSSE(noFlushWriter{httptest.NewRecorder()})
	if err := s.Send(1); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("got %v, want http.ErrNotSupported", err)
	}
}

// TestSSEOverHTTP reads events from a real server as they arrive, proving
// the flushes reach the network before the handler finishes.
func TestSSEOverHTTP(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := NewSSE(&caddyLikeWriterNet{w})
		_ = s.Send(map[string]string{"n": "1"})
		<-release // the client must see event 1 before we continue
		_ = s.Done()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != `data: {"n":"1"}`+"\n" {
			t.Errorf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first event did not arrive before the handler finished")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: [DONE]\n\n" {
		t.Errorf("rest %q", rest)
	}
}

// caddyLikeWriterNet wraps a real server writer with Unwrap only, so the
// flush goes through http.ResponseController's unwrapping.
type caddyLikeWriterNet struct{ http.ResponseWriter }

func (w *caddyLikeWriterNet) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestSSEConcurrentUse(t *testing.T) {
	rec := httptest.NewRecorder()
	s := NewSSE(rec)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_ = s.Send(map[string]int{"j": j})
				_ = s.Comment("ping")
			}
		}()
	}
	wg.Wait()
	// Events never interleave: every frame is whole.
	for _, frame := range strings.Split(strings.TrimSuffix(rec.Body.String(), "\n\n"), "\n\n") {
		if !strings.HasPrefix(frame, `data: {"j":`) && frame != ": ping" {
			t.Fatalf("torn frame %q", frame)
		}
	}
}

func TestSSEKeepAlive(t *testing.T) {
	rec := httptest.NewRecorder()
	s := NewSSE(rec)
	stop := s.KeepAlive(context.Background(), time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.bodyForTest(), ": ping\n\n") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no pings arrived")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // idempotent
	before := s.bodyForTest()
	time.Sleep(10 * time.Millisecond)
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	if got := s.bodyForTest(); got != before+"data: [DONE]\n\n" {
		t.Errorf("a ping followed stop: %q", strings.TrimPrefix(got, before))
	}

	// A cancelled context ends the pinger as well.
	ctx, cancel := context.WithCancel(context.Background())
	stop = NewSSE(httptest.NewRecorder()).KeepAlive(ctx, time.Hour)
	cancel()
	stop()
}

// bodyForTest reads the recorder body under the writer's lock.
func (s *SSE) bodyForTest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*httptest.ResponseRecorder).Body.String()
}
