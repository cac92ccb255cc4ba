package caddymodule

import (
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/impetusllm/impetus/inference"
)

// engines holds the state that outlives config reloads, one entry per
// models directory: the engine with its loaded models and running streams,
// the model manager (downloads, warmups), the event bus and the performance
// mode. A reload provisions the new config before cleaning up the old one,
// so the count goes 1→2→1 and the entry stays; the new config's options are
// applied to it when the config starts (App.Start).
var engines = caddy.NewUsagePool()

// engineEntry is one pooled engine and what lives as long as it.
type engineEntry struct {
	key    string
	engine *inference.Engine
	models *modelManager
	// bus is the Socket.IO bus while a config serves impetus_events.
	bus atomic.Pointer[EventBus]

	perfMu  sync.Mutex
	mode    string // the performance mode in force
	applied string // the config (mode, threads) last applied
}

// Destruct stops the engine once no config references it.
func (p *engineEntry) Destruct() error { return p.engine.Close() }

// publish sends an event through the bus, when a config serves one;
// without impetus_events there is nobody to tell.
func (p *engineEntry) publish(name string, payload any) {
	if b := p.bus.Load(); b != nil {
		_ = b.Publish(name, payload)
	}
}

func engineKey(opts inference.Options) string { return "engine:" + opts.ModelsDir }

// acquireEngine returns the entry for opts' models directory, starting an
// engine if none runs. An existing engine keeps its options until
// App.Start reconfigures it.
func acquireEngine(opts inference.Options) (*engineEntry, error) {
	key := engineKey(opts)
	val, _, err := engines.LoadOrNew(key, func() (caddy.Destructor, error) {
		e, err := inference.New(opts)
		if err != nil {
			return nil, err
		}
		p := &engineEntry{key: key, engine: e, mode: ModeBalanced}
		p.models = newModelManager(p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*engineEntry), nil
}

func releaseEngine(key string) { _, _ = engines.Delete(key) }
