package openaihandler

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/metrics"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/caddymodule/ratelimit"
)

// usage follows one generation request from arrival to its last byte: it
// feeds the Prometheus series, charges and refunds the key's token budget,
// and publishes an inference_stats event when the request succeeded.
type usage struct {
	timer      *metrics.Timer
	endpoint   string
	status     *statusRecorder
	refund     func(used int)
	model      string
	prompt     int
	completion int
}

// beginUsage starts following a request; use the returned writer for the
// response and defer endUsage.
func (h *OpenAI) beginUsage(w http.ResponseWriter, r *http.Request, endpoint string) (*usage, http.ResponseWriter) {
	sr := &statusRecorder{ResponseWriter: w}
	return &usage{timer: metrics.StartRequest(r, endpoint), endpoint: endpoint, status: sr}, sr
}

// setModel names the model once it has loaded.
func (u *usage) setModel(id string) {
	u.model = id
	u.timer.SetModel(id)
}

// charge takes promptTokens plus the completion tokens the request may use
// from the key's token budget (when the rate limiter set one) before any
// work starts. The unused part is refunded when the request ends.
func (u *usage) charge(w http.ResponseWriter, r *http.Request, promptTokens, reserve int) *openai.Error {
	u.prompt = promptTokens
	refund, msg, retry := ratelimit.ChargeTokens(w, r, reserve)
	if msg != "" {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		return openai.RateLimited(msg)
	}
	u.refund = refund
	return nil
}

// token records a generated token of choice.
func (u *usage) token(choice int) {
	u.completion++
	u.timer.Token(choice)
}

// performance is the seed API's performance_metrics: time so far, time to
// first token and tokens per second.
func (u *usage) performance() *openai.PerformanceMetrics {
	start := u.timer.Started()
	total := time.Since(start)
	pm := &openai.PerformanceMetrics{InferenceTimeMS: httperr.RoundTo(float64(total.Microseconds())/1000, 2)}
	if first := u.timer.FirstToken(); !first.IsZero() {
		pm.TimeToFirstTokenMS = httperr.RoundTo(float64(first.Sub(start).Microseconds())/1000, 2)
	}
	if total > 0 {
		pm.TokensPerSecond = httperr.RoundTo(float64(u.completion)/total.Seconds(), 2)
	}
	return pm
}

// endUsage closes the books on a request.
func (h *OpenAI) endUsage(u *usage) {
	status := u.status.code()
	u.timer.Finish(status, u.prompt, u.completion)
	if u.refund != nil {
		u.refund(u.prompt + u.completion)
	}
	if status != http.StatusOK || u.model == "" {
		return
	}
	start := u.timer.Started()
	took := time.Since(start)
	stats := map[string]any{
		"timestamp":         httperr.ISONow(),
		"model":             u.model,
		"endpoint":          u.endpoint,
		"prompt_tokens":     u.prompt,
		"completion_tokens": u.completion,
		"duration_ms":       httperr.RoundTo(float64(took.Microseconds())/1000, 2),
	}
	if took > 0 {
		n := u.completion
		if u.endpoint == string(endpointEmbeddings) {
			n = u.prompt // embeddings generate nothing: their rate is of the tokens embedded
		}
		stats["tokens_per_second"] = httperr.RoundTo(float64(n)/took.Seconds(), 2)
	}
	if first := u.timer.FirstToken(); !first.IsZero() {
		stats["time_to_first_token_ms"] = httperr.RoundTo(float64(first.Sub(start).Microseconds())/1000, 2)
	}
	h.app.Pool().Publish("inference_stats", stats)
}

// statusRecorder remembers the response status. It unwraps for
// http.ResponseController, so streaming flushes still reach the client.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// nextEvent waits for the next engine event, or for the server's exit
// notice (cut): then the stream must end with an error event.
func nextEvent(events <-chan choiceEvent) (ev choiceEvent, ok, cut bool) {
	select {
	case ev, ok = <-events:
		return ev, ok, false
	case <-app.ShutdownNotice():
		return choiceEvent{}, false, true
	}
}

// nextStreamEvent reads a stream's next engine event and counts its token.
// It ends the stream with an error event when the server exits or the
// generation fails (failed), and reports done once every choice finished.
func (h *OpenAI) nextStreamEvent(sse *openai.SSE, events <-chan choiceEvent, model string, acct *usage) (ev choiceEvent, done, failed bool) {
	ev, ok, cut := nextEvent(events)
	switch {
	case cut:
		sse.Error(shuttingDownError)
		return ev, false, true
	case !ok:
		return ev, true, false
	case ev.Err != nil:
		h.logger.Error("generation failed", zap.Error(ev.Err))
		sse.Error(engineError(ev.Err, model))
		return ev, false, true
	}
	if ev.HasToken {
		acct.token(ev.index)
	}
	return ev, false, false
}

// shuttingDownError is the last event of a stream cut by the server's exit.
var shuttingDownError = openai.Unavailable("the server is shutting down; retry the request")
