// Command impetus is Caddy with the Impetus LLM server modules built in: every
// Caddy subcommand (run, reload, validate, adapt, fmt, list-modules, …) works.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/impetusllm/impetus/caddymodule"
)

func main() {
	caddycmd.Main()
}
