package app

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Streams and graceful shutdown. On exit Caddy lets open requests run for
// the http app's grace period and then closes their connections, which would
// cut a stream with no word to the client. A watcher notices the exit and,
// shortly before the grace period ends, closes streamCut: streaming handlers
// then send a final error event and end cleanly.

var (
	gracePeriod atomic.Int64 // nanoseconds; 0 means eternal (never cut)
	streamCut   = make(chan struct{})
	watchOnce   sync.Once
)

// noteGracePeriod records the latest config's grace period and starts the
// exit watcher once per process.
func noteGracePeriod(ctx caddy.Context) {
	if app, err := ctx.AppIfConfigured("http"); err == nil {
		if h, ok := app.(*caddyhttp.App); ok {
			gracePeriod.Store(int64(h.GracePeriod))
		}
	}
	watchOnce.Do(func() { go watchExit() })
}

func watchExit() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if !caddy.Exiting() {
			continue
		}
		grace := time.Duration(gracePeriod.Load())
		if grace <= 0 {
			return // eternal grace: streams run to their end
		}
		margin := min(time.Second, grace/4)
		time.Sleep(grace - margin)
		close(streamCut)
		return
	}
}

// ShutdownNotice is closed when streams must end because the server exits.
func ShutdownNotice() <-chan struct{} { return streamCut }
