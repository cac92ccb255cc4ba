package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/impetusllm/impetus/inference"
)

// engines holds the inference engines that survive config reloads, keyed by
// the configuration that shapes them. A reload provisions the new config
// before cleaning up the old one, so the count goes 1→2→1 and the engine, its
// loaded weights and its running streams stay.
var engines = caddy.NewUsagePool()

type pooledEngine struct{ *inference.Engine }

// Destruct stops the engine once no config references it.
func (p pooledEngine) Destruct() error { return p.Engine.Close() }

func engineKey(opts inference.Options) string { return "engine:" + opts.ModelsDir }

// acquireEngine returns the engine for opts, starting one if none runs.
func acquireEngine(opts inference.Options) (*inference.Engine, string, error) {
	key := engineKey(opts)
	val, _, err := engines.LoadOrNew(key, func() (caddy.Destructor, error) {
		e, err := inference.New(opts)
		if err != nil {
			return nil, err
		}
		return pooledEngine{e}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return val.(pooledEngine).Engine, key, nil
}

func releaseEngine(key string) { _, _ = engines.Delete(key) }
