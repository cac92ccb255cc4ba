package metrics

import (
	"context"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/impetusllm/impetus/inference"
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

// TestGPUGauges checks the series one opened GPU gives: its info, total and
// free memory and the engine's use by kind, and that free memory is left
// out, not reported as 0, when the driver could not say. With no GPU
// (Engine.GPUs empty, as on a CPU-only host) there are no impetus_gpu_*
// series at all; test-gpu.sh checks the live series on a GPU machine.
func TestGPUGauges(t *testing.T) {
	c := newStateCollector()
	free := uint64(70 << 30)
	gpus := []inference.GPUState{
		{Ordinal: 0, Name: "NVIDIA H100 80GB HBM3", ComputeCapability: "9.0", Driver: "13.0", TotalBytes: 80 << 30, FreeBytes: &free,
			WeightsBytes: 700 << 20, KVBytes: 64 << 20, ActivationBytes: 8 << 20},
		{Ordinal: 1, Name: "NVIDIA H100 80GB HBM3", ComputeCapability: "9.0", Driver: "13.0", TotalBytes: 80 << 30},
	}
	type point struct {
		name   string
		labels map[string]string
		value  float64
	}
	var got []point
	collect := func(list []inference.GPUState) {
		got = got[:0]
		c.collectGPUs(list, func(d *prometheus.Desc, v float64, labels ...string) {
			m := prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
			var pb dto.Metric
			if err := m.Write(&pb); err != nil {
				t.Fatal(err)
			}
			p := point{name: d.String(), labels: map[string]string{}, value: pb.GetGauge().GetValue()}
			for _, lp := range pb.GetLabel() {
				p.labels[lp.GetName()] = lp.GetValue()
			}
			got = append(got, p)
		})
	}
	find := func(family string, labels map[string]string) (float64, bool) {
		for _, p := range got {
			if !strings.Contains(p.name, `"`+family+`"`) {
				continue
			}
			ok := true
			for k, v := range labels {
				ok = ok && p.labels[k] == v
			}
			if ok && len(p.labels) == len(labels) {
				return p.value, true
			}
		}
		return 0, false
	}
	collect(gpus)
	for _, w := range []struct {
		family string
		labels map[string]string
		value  float64
	}{
		{"impetus_gpu_info", map[string]string{"gpu": "0", "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "driver": "13.0"}, 1},
		{"impetus_gpu_memory_total_bytes", map[string]string{"gpu": "0"}, 80 << 30},
		{"impetus_gpu_memory_free_bytes", map[string]string{"gpu": "0"}, 70 << 30},
		{"impetus_gpu_memory_bytes", map[string]string{"gpu": "0", "use": "weights"}, 700 << 20},
		{"impetus_gpu_memory_bytes", map[string]string{"gpu": "0", "use": "kv"}, 64 << 20},
		{"impetus_gpu_memory_bytes", map[string]string{"gpu": "0", "use": "activations"}, 8 << 20},
		{"impetus_gpu_memory_bytes", map[string]string{"gpu": "1", "use": "weights"}, 0},
		{"impetus_gpu_memory_total_bytes", map[string]string{"gpu": "1"}, 80 << 30},
	} {
		if v, ok := find(w.family, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (found %v), want %v", w.family, w.labels, v, ok, w.value)
		}
	}
	if _, ok := find("impetus_gpu_memory_free_bytes", map[string]string{"gpu": "1"}); ok {
		t.Error("gpu 1's free memory is unknown but was reported")
	}
	collect(nil)
	if len(got) != 0 {
		t.Errorf("no GPU gave %d series", len(got))
	}
}
