package caddymodule

// The sub-packages register their Caddy modules and Caddyfile directives
// from init; importing this package brings all of them in.
import (
	_ "github.com/impetusllm/impetus/caddymodule/auth"
	_ "github.com/impetusllm/impetus/caddymodule/cors"
	_ "github.com/impetusllm/impetus/caddymodule/httperr"
	_ "github.com/impetusllm/impetus/caddymodule/ratelimit"
)
