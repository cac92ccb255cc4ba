package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/impetusllm/impetus/caddymodule/socketio"
)

// keyGrant is what an authenticated API key may do: use its models (nil:
// every model) and, as an admin, change server state.
type keyGrant struct {
	id     string
	models []string
	admin  bool
}

// allows reports whether the grant covers model id.
func (g *keyGrant) allows(id string) bool {
	if g == nil || g.models == nil {
		return true
	}
	for _, m := range g.models {
		if m == id {
			return true
		}
	}
	return false
}

// grantOf reads the grant of the request's authenticated user from the
// placeholders caddyauth fills ({http.auth.user.id}, and the metadata that
// BearerAuth adds: models and admin). A request that no authentication
// handler saw (a site without impetus_auth, or a path its matcher leaves
// open) has no user and is not restricted: access control is the site's
// authentication. A user of another provider, without the metadata, may use
// every model and is an admin, as before per-key capabilities existed.
func grantOf(r *http.Request) *keyGrant {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil
	}
	id, _ := repl.GetString("http.auth.user.id")
	if id == "" {
		return nil
	}
	g := &keyGrant{id: id, admin: true}
	if list, _ := repl.GetString("http.auth.user.models"); list != "" {
		g.models = strings.Split(list, ",")
	}
	if admin, _ := repl.GetString("http.auth.user.admin"); admin == "false" {
		g.admin = false
	}
	return g
}

// grantOfKey is the grant of a key matched by BearerAuth.lookup.
func grantOfKey(k *APIKey) *keyGrant {
	g := &keyGrant{id: k.ID, admin: k.admin}
	if len(k.Models) > 0 {
		g.models = append([]string(nil), k.Models...)
	}
	return g
}

// modelForbiddenMessage is the text of a 403 for a model outside the key's
// allow-list.
func modelForbiddenMessage(id string) string {
	return fmt.Sprintf("This API key may not use the model '%s'", id)
}

// authorizeModel is the one check, on every path that names a model, that
// the request's API key may use model id. When it may not, authorizeModel
// writes a 403 in the path's API shape (OpenAI under /v1, the seed's under
// /api) and returns false.
func authorizeModel(w http.ResponseWriter, r *http.Request, id string) bool {
	if grantOf(r).allows(id) {
		return true
	}
	if isOpenAIPath(r) {
		writeOpenAIError(w, http.StatusForbidden, modelForbiddenMessage(id), "model")
	} else {
		writeAPIError(w, http.StatusForbidden, modelForbiddenMessage(id), "model_id: not in this API key's models")
	}
	return false
}

// modelAllowed reports, without writing anything, whether the request's key
// may use model id: for lists, which show only what the key may use.
func modelAllowed(r *http.Request, id string) bool { return grantOf(r).allows(id) }

// requireAdmin checks that the request's key may change server state, and
// otherwise writes a 403 that says why and returns false.
func requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	g := grantOf(r)
	if g == nil || g.admin {
		return true
	}
	writeError(w, r, http.StatusForbidden, fmt.Sprintf(
		"The API key '%s' is not an admin key: %s %s changes server state. An operator grants this with 'admin %s' in impetus_auth.",
		g.id, r.Method, r.URL.Path, g.id))
	return false
}

// adminOnly wraps a state-changing handler with requireAdmin.
func adminOnly(fn func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if requireAdmin(w, r) {
			fn(w, r)
		}
	}
}

// ---- Socket.IO ----

// eventsHandlerVar carries the Events handler that served a request to the
// pooled bus's Authorize hook: the bus outlives configs, the key set does not.
const eventsHandlerVar = "impetus.events_handler"

// rateLimitVar carries the RateLimit handler that admitted a request, so a
// Socket.IO connection can be charged to its key's bucket as well.
const rateLimitVar = "impetus.ratelimit"

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
	var auth handshakeAuth
	if s := strings.TrimSpace(string(raw)); s != "" && s != "null" {
		if err := json.Unmarshal(raw, &auth); err != nil {
			return nil, errors.New("auth must be an object such as { token: '<API key>' }")
		}
	}
	token := strings.TrimSpace(auth.Token)
	if token == "" && auth.Authorization != "" {
		const prefix = "bearer "
		a := auth.Authorization
		if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
			return nil, errors.New("auth.Authorization must be 'Bearer <API key>'")
		}
		token = strings.TrimSpace(a[len(prefix):])
	}
	if token == "" {
		token, _ = bearerToken(r)
	}
	var keys *BearerAuth
	if h != nil {
		keys = h.Auth
	}
	switch {
	case token != "" && keys != nil:
		k, ok := keys.lookup(token)
		if !ok {
			return nil, errors.New("Invalid API key")
		}
		g := grantOfKey(k)
		if err := chargeSocket(r, g.id); err != nil {
			return nil, err
		}
		return g, nil
	case grantOf(r) != nil: // authenticated by impetus_auth in front
		return grantOf(r), nil
	case keys != nil:
		return nil, errors.New("Missing API key: pass it in the Socket.IO handshake as auth: { token: '<API key>' }")
	}
	return nil, nil
}

// chargeSocket takes one request from the key's rate-limit bucket, as the
// HTTP API would for a request by that key.
func chargeSocket(r *http.Request, keyID string) error {
	rl, _ := caddyhttp.GetVar(r.Context(), rateLimitVar).(*RateLimit)
	if rl == nil || rl.zone == nil {
		return nil
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil
	}
	repl.Set("http.auth.user.id", keyID)
	key := repl.ReplaceAll(rl.Key, "")
	if key == "" {
		return nil
	}
	b, pol := rl.zone.bucket(key, time.Now())
	if !b.requests.Allow() {
		return fmt.Errorf("Rate limit exceeded: %d requests per %s", pol.requests, pol.window)
	}
	return nil
}

// eventFor is the payload of an event for one socket: events about a model
// reach only sockets whose key may use it, and lists of loaded models show
// only those models.
func eventFor(s *socketio.Socket, payload any) (any, bool) {
	g, _ := s.Identity().(*keyGrant)
	if g == nil || g.models == nil {
		return payload, true
	}
	switch p := payload.(type) {
	case modelStatus:
		if p.ModelID != "" && !g.allows(p.ModelID) {
			return nil, false
		}
		loaded := make([]string, 0, len(p.LoadedModels))
		for _, id := range p.LoadedModels {
			if g.allows(id) {
				loaded = append(loaded, id)
			}
		}
		p.LoadedModels = loaded
		return p, true
	case downloadView:
		return p, g.allows(p.ModelID)
	case map[string]any:
		if id, ok := p["model"].(string); ok {
			return p, g.allows(id)
		}
	}
	return payload, true
}
