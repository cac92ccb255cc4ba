// Package events is the impetus_events handler: a Socket.IO server at
// /socket.io/ that streams model_status, hardware_metrics,
// download_progress and inference_stats events. Its bus is pooled with the
// engine, so clients stay connected across config reloads.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/caddymodule/socketio"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"
)

func init() {
	caddy.RegisterModule(Events{})
	httpcaddyfile.RegisterHandlerDirective("impetus_events", parseEvents)
	httpcaddyfile.RegisterDirectiveOrder("impetus_events", httpcaddyfile.Before, "file_server")
}

// Events serves the Socket.IO event stream at /socket.io/: hardware_metrics
// every 2 s and model_status on load/unload. Other paths pass on.
type Events struct {
	// The API keys a client must present to connect, checked like the
	// HTTP API's (impetus_auth): in the handshake's auth.token or
	// auth.Authorization ("Bearer <key>"), as a browser sends them, or in
	// an Authorization header. Keys restricted to models receive only the
	// events of those models. Leave /socket.io/ out of impetus_auth's
	// matcher so the handshake reaches this check; never put a key in the
	// URL. Unset: clients that impetus_auth let through in front, or
	// everyone on a site without authentication.
	Auth *auth.BearerAuth `json:"auth,omitempty"`

	bus    *EventBus
	busKey string
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Events) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_events",
		New: func() caddy.Module { return new(Events) },
	}
}

// Provision finds the impetus app and attaches to the pooled event bus of
// its engine, so connected clients survive config reloads.
func (h *Events) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Auth != nil {
		if err := h.Auth.Provision(ctx); err != nil {
			return fmt.Errorf("impetus_events auth: %w", err)
		}
	}
	a, err := ctx.App("impetus")
	if err != nil {
		return err
	}
	bus, key, err := acquireEventBus(a.(*app.App).Pool(), h.logger)
	if err != nil {
		return err
	}
	h.bus, h.busKey = bus, key
	return nil
}

// Cleanup releases this config's reference to the bus; the bus closes its
// clients (1001) only when no config uses it any more.
func (h *Events) Cleanup() error {
	if h.busKey != "" {
		releaseEventBus(h.busKey)
		h.busKey, h.bus = "", nil
	}
	return nil
}

// ServeHTTP hands /socket.io/ requests to the Socket.IO server.
func (h *Events) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != "/socket.io/" && r.URL.Path != "/socket.io" {
		return next.ServeHTTP(w, r)
	}
	caddyhttp.SetVar(r.Context(), eventsHandlerVar, h) // for authorizeSocket
	h.bus.server.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	impetus_events {
//		auth {                 # the keys clients must present (impetus_auth syntax)
//			key <id> <key>
//			models <id> <model...>
//		}
//	}
//
// Share the keys with impetus_auth through a snippet and import.
func (h *Events) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "auth":
			if h.Auth != nil {
				return d.Err("impetus_events: auth given twice")
			}
			h.Auth = new(auth.BearerAuth)
			if err := h.Auth.UnmarshalCaddyfile(d.NewFromNextSegment()); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized impetus_events option %q", d.Val())
		}
	}
	return nil
}

func parseEvents(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	e := new(Events)
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return e, err
}

// eventBuses holds the event buses that outlive config reloads, one per
// pooled engine.
var eventBuses = caddy.NewUsagePool()

// metricsInterval is how often hardware_metrics go out and loaded models are
// compared.
const metricsInterval = 2 * time.Second

// EventBus broadcasts named events to the Socket.IO clients and produces the
// hardware_metrics and model_status events itself.
type EventBus struct {
	server *socketio.Server
	engine *inference.Engine
	logger *zap.Logger
	stop   chan struct{}
	done   chan struct{}
	owner  *pool.Entry // publishes through this bus until it closes

	mu     sync.Mutex
	loaded []string // the loaded models at the last tick
}

// acquireEventBus returns the bus of the pooled engine p, starting one if
// none runs; p publishes through it until it closes.
func acquireEventBus(p *pool.Entry, logger *zap.Logger) (*EventBus, string, error) {
	key := "events:" + p.Key
	val, _, err := eventBuses.LoadOrNew(key, func() (caddy.Destructor, error) {
		b := newEventBus(p.Engine, logger, metricsInterval)
		b.owner = p
		p.AttachBus(b)
		return b, nil
	})
	if err != nil {
		return nil, "", err
	}
	return val.(*EventBus), key, nil
}

func releaseEventBus(key string) { _, _ = eventBuses.Delete(key) }

// newEventBus starts a bus whose ticker runs every interval.
func newEventBus(engine *inference.Engine, logger *zap.Logger, interval time.Duration) *EventBus {
	b := &EventBus{engine: engine, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	b.loaded = engine.Loaded()
	b.server = socketio.NewServer(socketio.Options{
		OnConnect: b.snapshot,
		OnEvent:   b.onClientEvent,
		Authorize: authorizeSocket,
		Logf: func(format string, args ...any) {
			logger.Sugar().Debugf(format, args...)
		},
	})
	_, _ = cpu.Percent(0, false) // start the CPU usage window
	go b.run(interval)
	return b
}

// eventRooms maps each event to the room a client subscribes to for it.
// A client that never subscribes gets every event (the seed's JavaScript
// example subscribes to nothing); once it subscribes to any room it gets
// only the events of its rooms.
var eventRooms = map[string]string{
	"model_status":      "models",
	"hardware_metrics":  "hardware",
	"download_progress": "downloads",
	"inference_stats":   "inference",
}

// Publish sends a named event with its payload to the clients listening to
// its room; an event with no room goes to every client.
func (b *EventBus) Publish(name string, payload any) error {
	if room, ok := eventRooms[name]; ok {
		return b.server.EmitEach(room, name, func(s *socketio.Socket) (any, bool) { return eventFor(s, payload) })
	}
	return b.server.Emit(name, payload)
}

// onClientEvent handles subscribe and unsubscribe; the argument is a room
// name, or an object {"room": name}. Unknown rooms and other events are
// ignored (and logged at debug level).
func (b *EventBus) onClientEvent(s *socketio.Socket, name string, args []json.RawMessage) {
	if name != "subscribe" && name != "unsubscribe" {
		b.logger.Debug("ignoring client event", zap.String("event", name))
		return
	}
	room, err := roomArg(args)
	if err != nil {
		b.logger.Debug("ignoring "+name, zap.Error(err))
		return
	}
	if name == "subscribe" {
		s.Join(room)
	} else {
		s.Leave(room)
	}
}

// roomArg reads the room of a subscribe or unsubscribe event.
func roomArg(args []json.RawMessage) (string, error) {
	if len(args) == 0 {
		return "", errors.New("no room given")
	}
	var room string
	if err := json.Unmarshal(args[0], &room); err != nil {
		var obj struct {
			Room string `json:"room"`
		}
		if err := json.Unmarshal(args[0], &obj); err != nil {
			return "", fmt.Errorf("room must be a string or {\"room\": string}: %w", err)
		}
		room = obj.Room
	}
	for _, known := range eventRooms {
		if room == known {
			return room, nil
		}
	}
	return "", fmt.Errorf("unknown room %q (rooms: models, hardware, downloads, inference)", room)
}

// Clients returns how many clients are connected.
func (b *EventBus) Clients() int { return b.server.Len() }

// Destruct stops the ticker and closes every client with 1001 (going away).
func (b *EventBus) Destruct() error {
	if b.owner != nil {
		b.owner.DetachBus(b)
	}
	close(b.stop)
	<-b.done
	b.server.Close()
	return nil
}

func (b *EventBus) run(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.tick()
		}
	}
}

// tick diffs the loaded models and, while anyone listens, sends metrics.
func (b *EventBus) tick() {
	now := b.engine.Loaded()
	b.mu.Lock()
	before := b.loaded
	b.loaded = now
	b.mu.Unlock()
	for _, change := range diffModels(before, now) {
		change.LoadedModels = now
		change.Timestamp = httperr.ISONow()
		if err := b.Publish("model_status", change); err != nil {
			b.logger.Error("publishing model_status", zap.Error(err))
		}
	}
	if b.Clients() == 0 {
		return
	}
	m, err := readHardwareMetrics()
	if err != nil {
		b.logger.Warn("reading hardware metrics", zap.Error(err))
		return
	}
	if err := b.Publish("hardware_metrics", m); err != nil {
		b.logger.Error("publishing hardware_metrics", zap.Error(err))
	}
}

// snapshot sends a new client the models loaded now.
func (b *EventBus) snapshot(s *socketio.Socket) {
	loaded := b.engine.Loaded()
	if p, ok := eventFor(s, models.ModelStatus{Timestamp: httperr.ISONow(), Status: "snapshot", LoadedModels: loaded}); ok {
		_ = s.Emit("model_status", p)
	}
}

// diffModels lists the loads and unloads between two sorted id lists.
func diffModels(before, after []string) []models.ModelStatus {
	in := func(list []string, id string) bool {
		for _, x := range list {
			if x == id {
				return true
			}
		}
		return false
	}
	var out []models.ModelStatus
	for _, id := range before {
		if !in(after, id) {
			out = append(out, models.ModelStatus{ModelID: id, Status: "unloaded"})
		}
	}
	for _, id := range after {
		if !in(before, id) {
			out = append(out, models.ModelStatus{ModelID: id, Status: "loaded"})
		}
	}
	return out
}

// hardwareMetrics is the hardware_metrics payload.
type hardwareMetrics struct {
	Timestamp string `json:"timestamp"`
	CPU       struct {
		UsagePercent float64    `json:"usage_percent"`
		LoadAverage  [3]float64 `json:"load_average"`
	} `json:"cpu"`
	Memory struct {
		TotalGB      float64 `json:"total_gb"`
		AvailableGB  float64 `json:"available_gb"`
		UsedGB       float64 `json:"used_gb"`
		UsagePercent float64 `json:"usage_percent"`
	} `json:"memory"`
}

func readHardwareMetrics() (hardwareMetrics, error) {
	var m hardwareMetrics
	m.Timestamp = httperr.ISONow()
	mem, err := hwinfo.ReadMemory()
	if err != nil {
		return m, err
	}
	const gb = 1 << 30
	m.Memory.TotalGB = httperr.RoundTo(float64(mem.TotalBytes)/gb, 2)
	m.Memory.AvailableGB = httperr.RoundTo(float64(mem.AvailableBytes)/gb, 2)
	m.Memory.UsedGB = httperr.RoundTo(float64(mem.UsedBytes)/gb, 2)
	m.Memory.UsagePercent = httperr.RoundTo(mem.UsedPercent, 1)
	pct, err := cpu.Percent(0, false)
	if err != nil {
		return m, fmt.Errorf("reading cpu usage: %w", err)
	}
	if len(pct) == 0 {
		return m, errors.New("reading cpu usage: no figures")
	}
	m.CPU.UsagePercent = httperr.RoundTo(pct[0], 1)
	avg, err := load.Avg()
	if err != nil {
		return m, fmt.Errorf("reading load average: %w", err)
	}
	m.CPU.LoadAverage = [3]float64{httperr.RoundTo(avg.Load1, 2), httperr.RoundTo(avg.Load5, 2), httperr.RoundTo(avg.Load15, 2)}
	return m, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Events)(nil)
	_ caddy.CleanerUpper          = (*Events)(nil)
	_ caddyhttp.MiddlewareHandler = (*Events)(nil)
	_ caddyfile.Unmarshaler       = (*Events)(nil)
	_ caddy.Destructor            = (*EventBus)(nil)
)
