package caddymodule

import "runtime/debug"

// version is set at build time by the Makefile:
// -ldflags "-X github.com/impetusllm/impetus/caddymodule.version=…".
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
