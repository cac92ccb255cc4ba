package events

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/ratelimit"
	"github.com/impetusllm/impetus/caddymodule/socketio"
)

// eventsHandlerVar carries the Events handler that served a request to the
// pooled bus's Authorize hook: the bus outlives configs, the key set does not.
const eventsHandlerVar = "impetus.events_handler"

// handshakeAuth is the Socket.IO client's `auth` option as Impetus reads it.
type handshakeAuth struct {
	Token         string `json:"token"`
	Authorization string `json:"Authorization"`
}

// authorizeSocket decides a Socket.IO CONNECT. The key may come from the
// handshake's auth.token or auth.Authorization ("Bearer <key>"), which is
// what a browser can send, or from the Authorization header of the request
// (extraHeaders, outside browsers); never from the query string. It is
// checked against the events handler's key set (the same BearerAuth as the
// HTTP API) and charged to the key's rate-limit bucket. Without a key set a
// user that impetus_auth authenticated in front is accepted, and a site
// with no authentication at all stays open, as its HTTP API is.
func authorizeSocket(r *http.Request, raw json.RawMessage) (any, error) {
	h, _ := caddyhttp.GetVar(r.Context(), eventsHandlerVar).(*Events)
	var hs handshakeAuth
	if s := strings.TrimSpace(string(raw)); s != "" && s != "null" {
		if err := json.Unmarshal(raw, &hs); err != nil {
			return nil, errors.New("auth must be an object such as { token: '<API key>' }")
		}
	}
	token := strings.TrimSpace(hs.Token)
	if token == "" && hs.Authorization != "" {
		const prefix = "bearer "
		a := hs.Authorization
		if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
			return nil, errors.New("auth.Authorization must be 'Bearer <API key>'")
		}
		token = strings.TrimSpace(a[len(prefix):])
	}
	if token == "" {
		token, _ = auth.BearerToken(r)
	}
	var keys *auth.BearerAuth
	if h != nil {
		keys = h.Auth
	}
	switch {
	case token != "" && keys != nil:
		k, ok := keys.Lookup(token)
		if !ok {
			return nil, errors.New("Invalid API key")
		}
		g := auth.GrantOfKey(k)
		if err := ratelimit.ChargeSocket(r, g.ID); err != nil {
			return nil, err
		}
		return g, nil
	case auth.GrantOf(r) != nil: // authenticated by impetus_auth in front
		return auth.GrantOf(r), nil
	case keys != nil:
		return nil, errors.New("Missing API key: pass it in the Socket.IO handshake as auth: { token: '<API key>' }")
	}
	return nil, nil
}

// eventFor is the payload of an event for one socket: events about a model
// reach only sockets whose key may use it, and lists of loaded models show
// only those models.
func eventFor(s *socketio.Socket, payload any) (any, bool) {
	g, _ := s.Identity().(*auth.Grant)
	if g == nil || g.Models == nil {
		return payload, true
	}
	switch p := payload.(type) {
	case models.ModelStatus:
		if p.ModelID != "" && !g.Allows(p.ModelID) {
			return nil, false
		}
		loaded := make([]string, 0, len(p.LoadedModels))
		for _, id := range p.LoadedModels {
			if g.Allows(id) {
				loaded = append(loaded, id)
			}
		}
		p.LoadedModels = loaded
		return p, true
	case models.DownloadView:
		return p, g.Allows(p.ModelID)
	case map[string]any:
		if id, ok := p["model"].(string); ok {
			return p, g.Allows(id)
		}
	}
	return payload, true
}
