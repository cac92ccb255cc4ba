package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/inference"
)

// newTestEvents builds an Events handler on a fresh engine and bus (no Caddy
// config), served by an httptest server whose other paths 404.
func newTestEvents(t *testing.T, interval time.Duration) (*EventBus, *httptest.Server) {
	t.Helper()
	eng, err := inference.New(inference.Options{ModelsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bus := newEventBus(eng, zap.NewNop(), interval)
	h := &Events{bus: bus, logger: zap.NewNop()}
	notFound := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		http.NotFound(w, r)
		return nil
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(func() {
		ts.Close()
		_ = bus.Destruct()
		_ = eng.Close()
	})
	return bus, ts
}

// TestSocketIONodeClient drives the handler with the official socket.io-client
// (default options: polling, then the WebSocket upgrade).
func TestSocketIONodeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node; skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the Socket.IO client test needs node and npm")
	}
	dir := filepath.Join("testdata", "socketio")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm not installed; the Socket.IO client test needs it to install socket.io-client")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm ci failed (offline?): %v\n%s", err, out)
		}
	}
	t.Run("default", func(t *testing.T) { runNodeClient(t, node, dir, false) })
	t.Run("websocket-only", func(t *testing.T) { runNodeClient(t, node, dir, true) })
}

// runNodeClient runs client.js against a fresh handler and checks what it saw.
func runNodeClient(t *testing.T, node, dir string, websocketOnly bool) {
	_, ts := newTestEvents(t, 300*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"client.js", ts.URL}
	if websocketOnly {
		args = append(args, "websocket")
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\nstdout: %s", err, out)
	}
	var got struct {
		Connected       bool   `json:"connected"`
		Upgraded        bool   `json:"upgraded"`
		FirstTransport  string `json:"first_transport"`
		FinalTransport  string `json:"final_transport"`
		SubscribeAcked  bool   `json:"subscribe_acked"`
		Error           string `json:"error"`
		HardwareMetrics struct {
			Timestamp string `json:"timestamp"`
			CPU       struct {
				UsagePercent *float64  `json:"usage_percent"`
				LoadAverage  []float64 `json:"load_average"`
			} `json:"cpu"`
			Memory struct {
				TotalGB      float64  `json:"total_gb"`
				AvailableGB  float64  `json:"available_gb"`
				UsedGB       float64  `json:"used_gb"`
				UsagePercent *float64 `json:"usage_percent"`
			} `json:"memory"`
		} `json:"hardware_metrics"`
		ModelStatus struct {
			Timestamp    string   `json:"timestamp"`
			Status       string   `json:"status"`
			LoadedModels []string `json:"loaded_models"`
		} `json:"model_status"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	t.Logf("client saw: %s", strings.TrimSpace(string(out)))
	wantFirst, wantUpgrade := "polling", true
	if websocketOnly {
		wantFirst, wantUpgrade = "websocket", false
	}
	if !got.Connected || got.FirstTransport != wantFirst || got.Upgraded != wantUpgrade || got.FinalTransport != "websocket" {
		t.Errorf("transport: connected=%v first=%q upgraded=%v final=%q", got.Connected, got.FirstTransport, got.Upgraded, got.FinalTransport)
	}
	hm := got.HardwareMetrics
	if _, err := time.Parse(time.RFC3339, hm.Timestamp); err != nil {
		t.Errorf("hardware_metrics timestamp %q: %v", hm.Timestamp, err)
	}
	if hm.CPU.UsagePercent == nil || len(hm.CPU.LoadAverage) != 3 || hm.Memory.TotalGB <= 0 || hm.Memory.UsagePercent == nil {
		t.Errorf("hardware_metrics incomplete: %+v", hm)
	}
	ms := got.ModelStatus
	if ms.Status != "snapshot" || ms.LoadedModels == nil || len(ms.LoadedModels) != 0 {
		t.Errorf("model_status: %+v", ms)
	}
	if _, err := time.Parse(time.RFC3339, ms.Timestamp); err != nil {
		t.Errorf("model_status timestamp %q: %v", ms.Timestamp, err)
	}
	if !got.SubscribeAcked {
		t.Errorf("subscribe event was not acknowledged")
	}
}
