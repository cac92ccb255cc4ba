package metrics

import (
	"context"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"
)

// series finds one metric of a family in the process registry by its labels.
func series(t *testing.T, family string, labels map[string]string) *dto.Metric {
	t.Helper()
	fams, err := ownRegistry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	t.Fatalf("no %s%v", family, labels)
	return nil
}

func TestRequestTimer(t *testing.T) {
	t0 := time.Now()
	before := series(t, "impetus_tokens_generated_total", nil).GetCounter().GetValue()
	rt := NewTimer("completions", "timer-test", "", t0)
	rt.tokenAt(0, t0.Add(100*time.Millisecond))
	rt.tokenAt(1, t0.Add(120*time.Millisecond)) // first token of choice 1: no gap yet
	rt.tokenAt(0, t0.Add(150*time.Millisecond))
	rt.tokenAt(1, t0.Add(190*time.Millisecond))
	rt.tokenAt(-1, t0) // ignored
	rt.finishAt(200, 7, 4, t0.Add(time.Second))

	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	ttft := series(t, "impetus_time_to_first_token_seconds", map[string]string{"model": "timer-test"}).GetHistogram()
	if ttft.GetSampleCount() != 1 || !near(ttft.GetSampleSum(), 0.1) {
		t.Fatalf("ttft count %d sum %v", ttft.GetSampleCount(), ttft.GetSampleSum())
	}
	itl := series(t, "impetus_inter_token_latency_seconds", map[string]string{"model": "timer-test"}).GetHistogram()
	if itl.GetSampleCount() != 2 || !near(itl.GetSampleSum(), 0.05+0.07) {
		t.Fatalf("inter-token count %d sum %v", itl.GetSampleCount(), itl.GetSampleSum())
	}
	lat := series(t, "impetus_request_duration_seconds", map[string]string{"model": "timer-test", "endpoint": "completions"}).GetHistogram()
	if lat.GetSampleCount() != 1 || !near(lat.GetSampleSum(), 1) {
		t.Fatalf("latency count %d sum %v", lat.GetSampleCount(), lat.GetSampleSum())
	}
	if v := series(t, "impetus_completion_tokens_total", map[string]string{"model": "timer-test", "key_id": "anonymous"}).GetCounter().GetValue(); v != 4 {
		t.Fatalf("completion tokens %v", v)
	}
	if v := series(t, "impetus_http_requests_total", map[string]string{"model": "timer-test", "status": "200"}).GetCounter().GetValue(); v != 1 {
		t.Fatalf("requests %v", v)
	}
	if after := series(t, "impetus_tokens_generated_total", nil).GetCounter().GetValue(); after-before != 4 {
		t.Fatalf("tokens generated rose by %v", after-before)
	}
	// A request that named no existing model is counted under "unknown".
	NewTimer("chat.completions", "", "k", t0).finishAt(404, 0, 0, t0)
	if v := series(t, "impetus_http_requests_total", map[string]string{"model": "unknown", "status": "404"}).GetCounter().GetValue(); v < 1 {
		t.Fatalf("unknown-model request not counted")
	}
}

func TestStartRequestKeyAndModel(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", "team-a")
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	rt := StartRequest(r, "chat.completions")
	rt.SetModel("org/model-a")
	rt.Finish(200, 11, 0)
	if v := series(t, "impetus_prompt_tokens_total", map[string]string{"model": "org/model-a", "key_id": "team-a"}).GetCounter().GetValue(); v != 11 {
		t.Fatalf("prompt tokens %v", v)
	}
}
