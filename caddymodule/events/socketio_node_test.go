package events

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

	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/manage/models"
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
	dir := filepath.Join("..", "testdata", "socketio")
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
	t.Run("default", func(t *testing.T) { runNodeClient(t, node, dir, "") })
	t.Run("websocket-only", func(t *testing.T) { runNodeClient(t, node, dir, "websocket") })
	t.Run("rooms", func(t *testing.T) { runNodeClient(t, node, dir, "rooms") })
}

// publishTestEvents sends download_progress and inference_stats through the
// bus every 100ms until ctx ends, with the payloads their producers build
// (the models package's DownloadView, the OpenAI handler's endUsage map).
func publishTestEvents(ctx context.Context, bus *EventBus) {
	d := models.DownloadView{DownloadID: "dl-test", TaskID: "dl-test", ModelID: "org/model", Status: "downloading", StartedAt: httperr.ISONow()}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = bus.Publish("download_progress", d)
		_ = bus.Publish("inference_stats", map[string]any{
			"timestamp": httperr.ISONow(), "model": "org/model", "endpoint": "chat", "prompt_tokens": 5,
			"completion_tokens": 7, "duration_ms": 12.5, "tokens_per_second": 560.0,
		})
	}
}

// runNodeClient runs client.js against a fresh handler and checks what it saw.
// mode is client.js's second argument: "", "websocket" or "rooms".
func runNodeClient(t *testing.T, node, dir, mode string) {
	bus, ts := newTestEvents(t, 300*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go publishTestEvents(ctx, bus)
	args := []string{"client.js", ts.URL}
	if mode != "" {
		args = append(args, mode)
	}
	websocketOnly := mode == "websocket"
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
		DownloadProgress struct {
			DownloadID string `json:"download_id"`
			ModelID    string `json:"model_id"`
			Status     string `json:"status"`
		} `json:"download_progress"`
		InferenceStats struct {
			Model            string `json:"model"`
			CompletionTokens int    `json:"completion_tokens"`
		} `json:"inference_stats"`
		AfterSubscribe struct {
			HardwareMetrics int `json:"hardware_metrics"`
			InferenceStats  int `json:"inference_stats"`
		} `json:"after_subscribe"`
		InferenceAfterJoin bool `json:"inference_after_join"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	t.Logf("client saw: %s", strings.TrimSpace(string(out)))
	if mode == "rooms" {
		// Subscribed to hardware only: metrics arrive (one per 300ms tick)
		// and inference_stats (published every 100ms) do not, until the
		// client joins inference too.
		if !got.SubscribeAcked || got.AfterSubscribe.HardwareMetrics == 0 || got.AfterSubscribe.InferenceStats != 0 || !got.InferenceAfterJoin {
			t.Errorf("rooms: acked=%v after subscribe %+v, inference after join %v", got.SubscribeAcked, got.AfterSubscribe, got.InferenceAfterJoin)
		}
		return
	}
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
	if dp := got.DownloadProgress; dp.DownloadID != "dl-test" || dp.ModelID != "org/model" || dp.Status != "downloading" {
		t.Errorf("download_progress: %+v", dp)
	}
	if is := got.InferenceStats; is.Model != "org/model" || is.CompletionTokens != 7 {
		t.Errorf("inference_stats: %+v", is)
	}
}

// TestSubscribeRoomArg covers the subscribe/unsubscribe argument forms the
// Node test does not send, and the bad ones.
func TestSubscribeRoomArg(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		room    string
		wantErr string
	}{
		{[]string{`"hardware"`}, "hardware", ""},
		{[]string{`{"room":"downloads"}`, `"extra"`}, "downloads", ""},
		{nil, "", "no room given"},
		{[]string{`"metrics"`}, "", "unknown room"},
		{[]string{`{"room":""}`}, "", "unknown room"},
		{[]string{`42`}, "", "room must be a string"},
		{[]string{`[`}, "", "room must be a string"},
	} {
		var raw []json.RawMessage
		for _, a := range tc.args {
			raw = append(raw, json.RawMessage(a))
		}
		room, err := roomArg(raw)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || room != tc.room {
			t.Errorf("%v: %q %v, want %q", tc.args, room, err, tc.room)
		}
	}
}

// FuzzRoomArg: any client-sent argument yields a known room or an error.
func FuzzRoomArg(f *testing.F) {
	for _, s := range []string{`"models"`, `{"room":"inference"}`, `null`, `{"room":1}`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		room, err := roomArg([]json.RawMessage{json.RawMessage(arg)})
		if err != nil {
			return
		}
		switch room {
		case "models", "hardware", "downloads", "inference":
		default:
			t.Fatalf("%q gave room %q", arg, room)
		}
	})
}
