// Package caddymodule brings in all of Impetus's Caddy modules: importing
// it (as cmd/impetus does, or xcaddy's --with) registers the impetus app,
// the impetus_* HTTP handlers, the bearer authentication provider and their
// Caddyfile syntax. Each module family lives in its own sub-package:
//
//   - app: the impetus app (global option `impetus`), its model routes and
//     the graceful end of streams on shutdown;
//   - openaihandler: impetus_openai, the OpenAI-compatible /v1 endpoints;
//   - manage: impetus_api, the /api management endpoints and the docs;
//   - events: impetus_events, the Socket.IO event stream;
//   - auth: impetus_auth (the impetus_bearer provider) and per-key grants;
//   - ratelimit: impetus_ratelimit, request and token budgets per key;
//   - cors: impetus_cors;
//   - httperr: impetus_error and the error bodies every handler writes.
package caddymodule

import (
	_ "github.com/impetusllm/impetus/caddymodule/app"
	_ "github.com/impetusllm/impetus/caddymodule/auth"
	_ "github.com/impetusllm/impetus/caddymodule/cors"
	_ "github.com/impetusllm/impetus/caddymodule/events"
	_ "github.com/impetusllm/impetus/caddymodule/httperr"
	_ "github.com/impetusllm/impetus/caddymodule/manage"
	_ "github.com/impetusllm/impetus/caddymodule/openaihandler"
	_ "github.com/impetusllm/impetus/caddymodule/ratelimit"
)
