// Package buildinfo says which Impetus build runs and since when, for the
// health bodies, the docs and the metrics.
package buildinfo

import (
	"runtime/debug"
	"time"
)

// version is set at build time by the Makefile:
// -ldflags "-X github.com/impetusllm/impetus/caddymodule/buildinfo.version=…".
var version string

// Version is the Impetus build's version: the stamped one, else the module
// version Go recorded, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/impetusllm/impetus" && dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
		if v := bi.Main.Version; bi.Main.Path == "github.com/impetusllm/impetus" && v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

// Started is when this process started, for uptime.
var Started = time.Now()
