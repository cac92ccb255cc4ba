package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// getRaw fetches a URL with an optional key.
func getRaw(t *testing.T, url, key string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// metricValue is one series' value in a Prometheus text body, or "".
func metricValue(body []byte, series string) string {
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestObserveEndpoints(t *testing.T) {
	port, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	models := t.TempDir()
	s := startServer(t, siteConfig(admin, port, models, "key ops ops-secret", 1000))
	s.waitReady(base + "/api/health")
	const key = "ops-secret"

	if r := do(t, "GET", base+"/api/hardware/info", ""); r.status != 401 {
		t.Fatalf("hardware info without a key: %d", r.status)
	}
	r := do(t, "GET", base+"/api/hardware/info", key)
	cpu, _ := r.body["cpu"].(map[string]any)
	eng, _ := r.body["engine"].(map[string]any)
	mem, _ := r.body["memory"].(map[string]any)
	if r.status != 200 || cpu == nil || eng == nil || mem == nil {
		t.Fatalf("hardware info: %d %v", r.status, r.body)
	}
	if cpu["total_cores"] != float64(runtime.NumCPU()) && runtime.GOOS == "linux" {
		// NumCPU follows the affinity mask; total_cores counts online CPUs.
		out, _ := exec.Command("nproc", "--all").Output()
		if strings.TrimSpace(string(out)) != fmt.Sprint(cpu["total_cores"]) {
			t.Errorf("total_cores %v; nproc --all says %s", cpu["total_cores"], out)
		}
	}
	if eng["compute_threads"] != float64(runtime.NumCPU()) || eng["performance_mode"] != "balanced" || r.body["mlx_version"] != nil {
		t.Fatalf("engine %v", eng)
	}

	r = do(t, "GET", base+"/api/hardware/metrics", key)
	proc, _ := r.body["process"].(map[string]any)
	if r.status != 200 || proc == nil || proc["pid"] != float64(s.cmd.Process.Pid) {
		t.Fatalf("hardware metrics: %d %v (server pid %d)", r.status, r.body, s.cmd.Process.Pid)
	}

	code, raw := post(t, base+"/api/hardware/performance-mode", key, `{"mode":"efficiency"}`)
	if code != 200 || !strings.Contains(string(raw), `"mode":"efficiency"`) {
		t.Fatalf("performance mode: %d %s", code, raw)
	}
	code, raw = post(t, base+"/api/hardware/performance-mode", key, `{"mode":"fast"}`)
	if code != 400 || !strings.Contains(string(raw), `"type":"validation_error"`) {
		t.Fatalf("bad mode: %d %s", code, raw)
	}
	half := max(1, runtime.NumCPU()/2)

	code, hdr, a := getRaw(t, base+"/api/metrics", key)
	_, _, b := getRaw(t, base+"/api/health/metrics", "") // public like the other probes
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !bytes.Contains(b, []byte("# TYPE impetus_tokens_generated_total counter")) {
		t.Fatalf("metrics: %d %v\n%s", code, hdr, a)
	}
	if metricValue(a, "impetus_compute_threads") != fmt.Sprint(half) || metricValue(a, `impetus_performance_mode{mode="efficiency"}`) != "1" {
		t.Fatalf("metrics do not show the mode:\n%s", a)
	}
	if promtoolBin, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtoolBin, "check", "metrics")
		cmd.Stdin = bytes.NewReader(a)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed (apt-get install prometheus); skipping the lint")
	}

	// A reload that does not touch the mode keeps it.
	cfg2 := filepath.Join(s.dir, "Caddyfile.v2")
	os.WriteFile(cfg2, []byte(siteConfig(admin, port, models, "key ops2 ops-secret-2", 1000)), 0o600)
	if out, err := exec.Command(s.bin, "reload", "--config", cfg2, "--adapter", "caddyfile", "--address", admin).CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	r = do(t, "GET", base+"/api/hardware/performance-mode", "ops-secret-2")
	if settings, _ := r.body["settings"].(map[string]any); r.status != 200 || r.body["mode"] != "efficiency" || settings["compute_threads"] != float64(half) {
		t.Fatalf("after reload: %d %v", r.status, r.body)
	}
	_, _, adm := getRaw(t, "http://"+admin+"/metrics", "")
	if metricValue(adm, "impetus_compute_threads") != fmt.Sprint(half) {
		t.Fatalf("admin /metrics lacks the impetus collectors after reload:\n%.2000s", adm)
	}

	// The spec and the docs page.
	r = do(t, "GET", base+"/api/docs/openapi.json", "ops-secret-2")
	if r.status != 200 || r.body["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d", r.status)
	}
	for _, p := range []string{"/docs", "/api/docs"} {
		code, hdr, page := getRaw(t, base+p, "ops-secret-2")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("Impetus API")) || hdr.Get("Content-Security-Policy") == "" {
			t.Fatalf("%s: %d %v", p, code, hdr)
		}
	}
}
