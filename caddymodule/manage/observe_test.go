package manage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddyserver/caddy/v2"

	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/buildinfo"
	"github.com/impetusllm/impetus/caddymodule/metrics"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/testutil"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
}

// observeConfig is a Caddy config serving impetus_api, with the admin API
// (and its /metrics) on admin.
func observeConfig(dir, addr, admin string, memPercent int, mode string) []byte {
	return []byte(fmt.Sprintf(`{
		"admin": {"listen": %q, "config": {"persist": false}},
		"storage": {"module": "file_system", "root": %q},
		"apps": {
			"impetus": {"models_dir": %q, "max_memory_percent": %d, "performance_mode": %q},
			"http": {"servers": {"s": {"listen": [%q], "automatic_https": {"disable": true},
				"routes": [{"handle": [{"handler": "impetus_api"}, {"handler": "static_response", "status_code": 404}]}]}}}
		}
	}`, admin, dir+"/storage", dir+"/models", memPercent, mode, addr))
}

func fetch(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.DefaultClient.Do(req)
		if err == nil {
			break
		}
		// Right after an in-process reload, a connection the old server
		// accepted may be closed by its graceful shutdown before any
		// response: no answer at all, which clients retry (as SDKs do).
		if method != "GET" || attempt == 2 {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	code, _, raw := fetch(t, "GET", url, "")
	var v map[string]any
	if code != 200 || json.Unmarshal(raw, &v) != nil {
		t.Fatalf("GET %s: %d %s", url, code, raw)
	}
	return v
}

// seriesValue returns the value of one series (name plus exact label text) in a
// Prometheus text body, or "" when absent.
func seriesValue(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// families lists the metric families (# TYPE lines) of a text body.
func families(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

func TestObserveThroughCaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Caddy server")
	}
	dir, addr, admin := t.TempDir(), freeAddr(t), freeAddr(t)
	base := "http://" + addr
	if err := caddy.Load(observeConfig(dir, addr, admin, 95, "balanced"), true); err != nil {
		t.Fatal(err)
	}
	defer caddy.Stop()
	doc := specDoc(t)
	cpus := runtime.NumCPU()

	t.Run("hardware info", func(t *testing.T) {
		code, _, raw := fetch(t, "GET", base+"/api/hardware/info", "")
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		mustMatch(t, doc, "GET", "/api/hardware/info", 200, raw)
		var info hardwareInfo
		json.Unmarshal(raw, &info)
		want, _ := hwinfo.ReadCPU()
		mem, _ := hwinfo.ReadMemory()
		if info.CPU.TotalCores != want.TotalCores || info.Memory.TotalBytes != mem.TotalBytes || info.Engine.SIMD != kernels.Features() ||
			info.Engine.ComputeThreads != cpus || info.Engine.PerformanceMode != "balanced" || info.CPU.Architecture != runtime.GOARCH {
			t.Fatalf("info %s", raw)
		}
		if !strings.Contains(string(raw), `"chip_type":null`) || !strings.Contains(string(raw), `"mlx_version":null`) {
			t.Fatalf("Apple/MLX keys not null: %s", raw)
		}
	})

	t.Run("hardware metrics", func(t *testing.T) {
		code, _, raw := fetch(t, "GET", base+"/api/hardware/metrics", "")
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		mustMatch(t, doc, "GET", "/api/hardware/metrics", 200, raw)
		var m hardwareMetricsBody
		json.Unmarshal(raw, &m)
		if len(m.CPU.PerCoreUsage) == 0 || m.CPU.UsagePercent < 0 || m.CPU.UsagePercent > 100 || len(m.CPU.LoadAverage) != 3 ||
			m.Process.Threads == nil || m.Process.MemoryMB == nil || m.Memory.TotalGB <= 0 || !strings.Contains(string(raw), `"metal":null`) {
			t.Fatalf("metrics %s", raw)
		}
	})

	t.Run("performance mode", func(t *testing.T) {
		code, _, raw := fetch(t, "POST", base+"/api/hardware/performance-mode", `{"mode":"efficiency"}`)
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		mustMatch(t, doc, "POST", "/api/hardware/performance-mode", 200, raw)
		half := max(1, cpus/2)
		if kernels.Threads() != half {
			t.Fatalf("kernel threads %d after efficiency, want %d", kernels.Threads(), half)
		}
		info := getJSON(t, base+"/api/hardware/info")
		eng := info["engine"].(map[string]any)
		if eng["performance_mode"] != "efficiency" || eng["compute_threads"] != float64(half) {
			t.Fatalf("info engine %v", eng)
		}
		if m := getJSON(t, base+"/api/hardware/metrics")["engine"].(map[string]any); m["compute_threads"] != float64(half) {
			t.Fatalf("metrics engine %v", m)
		}
		_, _, prom := fetch(t, "GET", base+"/api/metrics", "")
		if seriesValue(string(prom), `impetus_performance_mode{mode="efficiency"}`) != "1" || seriesValue(string(prom), "impetus_compute_threads") != fmt.Sprint(half) {
			t.Fatalf("prometheus mode:\n%s", prom)
		}
		for _, bad := range []string{`{"mode":"turbo"}`, `{"mode":1}`, `not json`, `{"mode":"balanced","x":1}`, ``, `{"mode":"balanced"}{}`} {
			code, _, raw := fetch(t, "POST", base+"/api/hardware/performance-mode", bad)
			if code != 400 {
				t.Errorf("%q: %d %s", bad, code, raw)
				continue
			}
			mustMatch(t, doc, "POST", "/api/hardware/performance-mode", 400, raw)
		}
		if kernels.Threads() != half {
			t.Fatal("a refused request changed the mode")
		}
		if code, _, _ := fetch(t, "DELETE", base+"/api/hardware/performance-mode", ""); code != 405 {
			t.Fatalf("DELETE: %d", code)
		}
		st := getJSON(t, base+"/api/hardware/performance-mode")
		if st["mode"] != "efficiency" {
			t.Fatalf("GET mode %v", st)
		}
	})

	t.Run("health bodies match the spec", func(t *testing.T) {
		for _, p := range []string{"/api/health", "/api/health/ready", "/api/health/live", "/api/health/status"} {
			code, _, raw := fetch(t, "GET", base+p, "")
			mustMatch(t, doc, "GET", p, code, raw)
		}
		code, _, raw := fetch(t, "GET", base+"/api/no-such", "")
		if code != 404 || !bytes.Contains(raw, []byte(`"timestamp"`)) {
			t.Fatalf("404: %d %s", code, raw)
		}
	})

	t.Run("prometheus text", func(t *testing.T) {
		code, hdr, a := fetch(t, "GET", base+"/api/metrics", "")
		_, _, b := fetch(t, "GET", base+"/api/health/metrics", "")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Fatalf("%d %v", code, hdr)
		}
		fa, fb := families(string(a)), families(string(b))
		if strings.Join(fa, ",") != strings.Join(fb, ",") {
			t.Fatalf("the two paths differ:\n%v\n%v", fa, fb)
		}
		for _, name := range []string{"impetus_cpu_usage_percent", "impetus_memory_usage_percent", "impetus_memory_available_bytes",
			"impetus_models_loaded", "impetus_uptime_seconds", "impetus_info", "impetus_tokens_generated_total", "impetus_requests_total"} {
			if !strings.Contains(string(a), "# TYPE "+name+" ") {
				t.Errorf("%s missing", name)
			}
		}
		promtool(t, a)
	})

	t.Run("counters survive a reload", func(t *testing.T) {
		const series = `impetus_http_requests_total{endpoint="chat.completions",model="reload-test",status="200"}`
		metrics.NewTimer("chat.completions", "reload-test", "k1", buildinfo.Started).Finish(200, 3, 5)
		// An unrelated change: the mode set through the API must stay.
		if err := caddy.Load(observeConfig(dir, addr, admin, 90, "balanced"), true); err != nil {
			t.Fatal(err)
		}
		// The old server closes its idle keep-alive connections as it
		// stops; a request racing that close would see EOF.
		http.DefaultClient.CloseIdleConnections()
		metrics.NewTimer("chat.completions", "reload-test", "k1", buildinfo.Started).Finish(200, 3, 5)
		_, _, own := fetch(t, "GET", base+"/api/metrics", "")
		_, _, adm := fetch(t, "GET", "http://"+admin+"/metrics", "")
		for name, body := range map[string]string{"/api/metrics": string(own), "admin /metrics": string(adm)} {
			if got := seriesValue(body, series); got != "2" {
				t.Errorf("%s: %s = %q after reload, want 2", name, series, got)
			}
			if got := seriesValue(body, `impetus_prompt_tokens_total{key_id="k1",model="reload-test"}`); got != "6" {
				t.Errorf("%s: prompt tokens = %q, want 6", name, got)
			}
		}
		if kernels.Threads() != max(1, cpus/2) {
			t.Fatalf("an unrelated reload reset the mode: %d threads", kernels.Threads())
		}
		// A reload that changes the configured mode applies it.
		if err := caddy.Load(observeConfig(dir, addr, admin, 90, "performance"), true); err != nil {
			t.Fatal(err)
		}
		running, err := caddy.ActiveContext().AppIfConfigured("impetus")
		if err != nil {
			t.Fatal(err)
		}
		mode := running.(*app.App).Pool().Performance().Mode
		if kernels.Threads() != cpus || mode != "performance" {
			t.Fatalf("config mode not applied: %d threads, %s", kernels.Threads(), mode)
		}
		promtool(t, adm)
	})

	t.Run("every documented api operation is served", func(t *testing.T) {
		for _, op := range docOps {
			if !strings.HasPrefix(op.path, "/api") && !strings.HasPrefix(op.path, "/docs") {
				continue // other handlers: /v1 (impetus_openai), /socket.io/ (impetus_events)
			}
			body := ""
			if op.request != nil {
				b, _ := json.Marshal(op.request)
				body = string(b)
			}
			code, _, raw := fetch(t, op.method, base+op.path, body)
			// A path parameter filled with a placeholder may name no
			// resource: a 404 from the route itself is fine, the router's
			// "no such endpoint" is not.
			if code == 404 && strings.Contains(op.path, "{") && !strings.Contains(string(raw), "no such endpoint") {
				continue
			}
			if code == 404 || code == 405 {
				t.Errorf("%s %s: %d %s", op.method, op.path, code, raw)
			}
		}
	})
}

// promtool lints a metrics body with Prometheus's promtool when installed
// (Debian package prometheus).
func promtool(t *testing.T, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (apt-get install prometheus); skipping the lint")
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
