// Package pool holds the state that outlives config reloads: one entry per
// models directory with the engine, its model manager, the event bus that
// publishes through it and the performance mode. The impetus app acquires
// an entry on Provision and releases it on Cleanup; the handlers reach it
// through the app.
package pool

import (
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/inference"
)

// engines holds the entries, keyed by models directory. A reload provisions
// the new config before cleaning up the old one, so the count goes 1→2→1
// and the entry stays; the new config's options are applied to it when the
// config starts (App.Start).
var engines = caddy.NewUsagePool()

// Entry is one pooled engine and what lives as long as it.
type Entry struct {
	Key    string
	Engine *inference.Engine
	// Models manages loads, downloads, warm-ups and benchmarks; it lives as
	// long as the engine, so downloads survive reloads.
	Models *models.Manager

	busMu sync.Mutex
	bus   Publisher // the Socket.IO bus while a config serves impetus_events

	perfMu  sync.Mutex
	mode    string // the performance mode in force
	applied string // the config (mode, threads) last applied
}

// Publisher sends named events to listening clients: the events package's
// bus.
type Publisher interface {
	Publish(name string, payload any) error
}

// Destruct stops the engine once no config references it.
func (p *Entry) Destruct() error { return p.Engine.Close() }

// AttachBus makes b the bus that Publish sends through.
func (p *Entry) AttachBus(b Publisher) {
	p.busMu.Lock()
	p.bus = b
	p.busMu.Unlock()
}

// DetachBus stops publishing through b, if it is still the attached bus.
func (p *Entry) DetachBus(b Publisher) {
	p.busMu.Lock()
	if p.bus == b {
		p.bus = nil
	}
	p.busMu.Unlock()
}

// Publish sends an event through the bus, when a config serves one;
// without impetus_events there is nobody to tell.
func (p *Entry) Publish(name string, payload any) {
	p.busMu.Lock()
	b := p.bus
	p.busMu.Unlock()
	if b != nil {
		_ = b.Publish(name, payload)
	}
}

func engineKey(opts inference.Options) string { return "engine:" + opts.ModelsDir }

// Acquire returns the entry for opts' models directory, starting an engine
// if none runs. An existing engine keeps its options until App.Start
// reconfigures it.
func Acquire(opts inference.Options) (*Entry, error) {
	key := engineKey(opts)
	val, _, err := engines.LoadOrNew(key, func() (caddy.Destructor, error) {
		e, err := inference.New(opts)
		if err != nil {
			return nil, err
		}
		p := &Entry{Key: key, Engine: e, mode: ModeBalanced}
		p.Models = models.NewManager(e, p.Publish)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*Entry), nil
}

// Release drops a reference taken by Acquire; the last one stops the engine.
func Release(key string) { _, _ = engines.Delete(key) }
