package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/testutil"
)

func TestDiffModels(t *testing.T) {
	tests := []struct {
		name          string
		before, after []string
		want          []string // "status:id"
	}{
		{"none", nil, nil, nil},
		{"same", []string{"a", "b"}, []string{"a", "b"}, nil},
		{"load", []string{"a"}, []string{"a", "b"}, []string{"loaded:b"}},
		{"unload", []string{"a", "b"}, []string{"b"}, []string{"unloaded:a"}},
		{"swap", []string{"a"}, []string{"c"}, []string{"unloaded:a", "loaded:c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range diffModels(tt.before, tt.after) {
				got = append(got, c.Status+":"+c.ModelID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEventsUnmarshalCaddyfile(t *testing.T) {
	for _, tt := range []struct {
		in      string
		wantErr string
	}{
		{"impetus_events", ""},
		{"impetus_events extra", "wrong argument count"},
		{"impetus_events {\n\tfoo\n}", `unrecognized impetus_events option "foo"`},
		{"impetus_events {\n\tauth {\n\t\tkey k secret\n\t\tadmin k\n\t}\n}", ""},
		{"impetus_events {\n\tauth {\n\t\tkey k secret\n\t\tmodels x m\n\t}\n}", `no key with id "x"`},
	} {
		var e Events
		err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestEventsPassesOtherPaths(t *testing.T) {
	_, ts := newTestEvents(t, time.Hour)
	for path, want := range map[string]int{"/": 404, "/socket.io/x": 404, "/api/health": 404, "/socket.io/?EIO=4&transport=polling": 200} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestReadHardwareMetrics(t *testing.T) {
	m, err := readHardwareMetrics()
	if err != nil {
		t.Skipf("no hardware metrics on this system: %v", err)
	}
	if m.Memory.TotalGB <= 0 || m.Memory.UsedGB > m.Memory.TotalGB || m.Memory.UsagePercent < 0 || m.Memory.UsagePercent > 100 {
		t.Fatalf("memory figures out of range: %+v", m.Memory)
	}
	if m.CPU.UsagePercent < 0 || m.CPU.UsagePercent > 100 {
		t.Fatalf("cpu usage out of range: %+v", m.CPU)
	}
	if _, err := time.Parse(time.RFC3339, m.Timestamp); err != nil {
		t.Fatal(err)
	}
}

// dialEvents opens a Socket.IO session over a direct WebSocket and joins "/",
// returning the connection after the model_status snapshot.
func dialEvents(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	readWS(t, ctx, conn, "0{")
	if err := conn.Write(ctx, websocket.MessageText, []byte("40")); err != nil {
		t.Fatal(err)
	}
	readWS(t, ctx, conn, "40{")
	readWS(t, ctx, conn, `42["model_status",{`)
	return conn
}

// readWS reads text messages, skipping heartbeats and metrics, until one
// starts with prefix.
func readWS(t *testing.T, ctx context.Context, conn *websocket.Conn, prefix string) string {
	t.Helper()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(string(b), prefix) {
			return string(b)
		}
	}
}

func TestEventBusPublish(t *testing.T) {
	bus, ts := newTestEvents(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := dialEvents(t, ctx, ts.URL)
	if bus.Clients() != 1 {
		t.Fatalf("Clients = %d", bus.Clients())
	}
	payload := map[string]any{"task_id": "t1", "progress": 0.5}
	if err := bus.Publish("download_progress", payload); err != nil {
		t.Fatal(err)
	}
	msg := readWS(t, ctx, conn, `42["download_progress"`)
	var args []json.RawMessage
	if err := json.Unmarshal([]byte(msg[2:]), &args); err != nil || len(args) != 2 || string(args[1]) != `{"progress":0.5,"task_id":"t1"}` {
		t.Fatalf("published %s (%v)", msg, err)
	}
	if err := bus.Publish("bad", func() {}); err == nil {
		t.Fatal("published an unencodable payload")
	}
}

func TestEventBusTick(t *testing.T) {
	bus, ts := newTestEvents(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := dialEvents(t, ctx, ts.URL)
	// Pretend a model was loaded at the last tick: this tick reports it gone.
	bus.mu.Lock()
	bus.loaded = []string{"org/model"}
	bus.mu.Unlock()
	bus.tick()
	msg := readWS(t, ctx, conn, `42["model_status"`)
	var args []json.RawMessage
	var st models.ModelStatus
	if err := json.Unmarshal([]byte(msg[2:]), &args); err != nil || len(args) != 2 {
		t.Fatalf("model_status %s: %v", msg, err)
	}
	if err := json.Unmarshal(args[1], &st); err != nil || st.Status != "unloaded" || st.ModelID != "org/model" || st.LoadedModels == nil || len(st.LoadedModels) != 0 {
		t.Fatalf("model_status %s", args[1])
	}
	readWS(t, ctx, conn, `42["hardware_metrics",{"timestamp":`)
}

// A reload provisions the new handler before cleaning up the old one: the
// bus (and its clients) stays; the last release closes clients with 1001.
func TestEventBusSurvivesReload(t *testing.T) {
	eng, err := inference.New(inference.Options{ModelsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	p := &pool.Entry{Key: "test-engine:" + t.Name(), Engine: eng}
	old, oldKey, err := acquireEventBus(p, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	next, nextKey, err := acquireEventBus(p, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if old != next || oldKey != nextKey {
		t.Fatal("reload built a second event bus")
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		old.server.ServeHTTP(w, r)
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := dialEvents(t, ctx, ts.URL)
	releaseEventBus(oldKey)
	if err := next.Publish("still", "here"); err != nil {
		t.Fatal(err)
	}
	readWS(t, ctx, conn, `42["still","here"]`)
	releaseEventBus(nextKey)
	for {
		_, _, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("close after the last release: %v", err)
			}
			break
		}
	}
}

// TestEventsThroughCaddyReload runs the handler in a real Caddy config and
// reloads it: the WebSocket client stays connected to the same bus, and
// stopping Caddy (the last release) closes it with 1001.
func TestEventsThroughCaddyReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Caddy server")
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	config := func(memPercent int) []byte {
		return []byte(fmt.Sprintf(`{
			"admin": {"disabled": true, "config": {"persist": false}},
			"storage": {"module": "file_system", "root": %q},
			"apps": {
				"impetus": {"models_dir": %q, "max_memory_percent": %d},
				"http": {"servers": {"s": {"listen": [%q], "automatic_https": {"disable": true},
					"routes": [{"handle": [{"handler": "impetus_events"}, {"handler": "static_response", "status_code": 404}]}]}}}
			}
		}`, dir+"/storage", dir+"/models", memPercent, addr))
	}
	if err := caddy.Load(config(90), true); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = caddy.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dialEvents(t, ctx, "http://"+addr)
	if err := caddy.Load(config(80), true); err != nil {
		t.Fatal(err)
	}
	// The reload kept the bus: one bus in the pool, still serving this client.
	var bus *EventBus
	eventBuses.Range(func(_, v any) bool {
		bus = v.(*EventBus)
		return true
	})
	if bus == nil || bus.Clients() != 1 {
		t.Fatalf("after reload: bus %v", bus)
	}
	if err := bus.Publish("after_reload", true); err != nil {
		t.Fatal(err)
	}
	readWS(t, ctx, conn, `42["after_reload",true]`)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("close after stop: %v", err)
			}
			return
		}
	}
}
