package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/impetusllm/impetus/caddymodule/httperr"
)

// Grant is what an authenticated API key may do: use its models (nil:
// every model) and, as an admin, change server state.
type Grant struct {
	// ID is the key's id ({http.auth.user.id}).
	ID string
	// Models the key may use; nil means every model.
	Models []string
	// Admin lets the key change server state.
	Admin bool
}

// Allows reports whether the grant covers model id.
func (g *Grant) Allows(id string) bool {
	if g == nil || g.Models == nil {
		return true
	}
	for _, m := range g.Models {
		if m == id {
			return true
		}
	}
	return false
}

// GrantOf reads the grant of the request's authenticated user from the
// placeholders caddyauth fills ({http.auth.user.id}, and the metadata that
// BearerAuth adds: models and admin). A request that no authentication
// handler saw (a site without impetus_auth, or a path its matcher leaves
// open) has no user and is not restricted: access control is the site's
// authentication. A user of another provider, without the metadata, may use
// every model and is an admin, as before per-key capabilities existed.
func GrantOf(r *http.Request) *Grant {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil
	}
	id, _ := repl.GetString("http.auth.user.id")
	if id == "" {
		return nil
	}
	g := &Grant{ID: id, Admin: true}
	if list, _ := repl.GetString("http.auth.user.models"); list != "" {
		g.Models = strings.Split(list, ",")
	}
	if admin, _ := repl.GetString("http.auth.user.admin"); admin == "false" {
		g.Admin = false
	}
	return g
}

// GrantOfKey is the grant of a key matched by BearerAuth.Lookup.
func GrantOfKey(k *APIKey) *Grant {
	g := &Grant{ID: k.ID, Admin: k.admin}
	if len(k.Models) > 0 {
		g.Models = append([]string(nil), k.Models...)
	}
	return g
}

// ModelForbiddenMessage is the text of a 403 for a model outside the key's
// allow-list.
func ModelForbiddenMessage(id string) string {
	return fmt.Sprintf("This API key may not use the model '%s'", id)
}

// AuthorizeModel is the one check, on every path that names a model, that
// the request's API key may use model id. When it may not, AuthorizeModel
// writes a 403 in the path's API shape (OpenAI under /v1, the seed's under
// /api) and returns false.
func AuthorizeModel(w http.ResponseWriter, r *http.Request, id string) bool {
	if GrantOf(r).Allows(id) {
		return true
	}
	if httperr.IsOpenAIPath(r) {
		httperr.WriteOpenAI(w, http.StatusForbidden, ModelForbiddenMessage(id), "model")
	} else {
		httperr.WriteAPI(w, http.StatusForbidden, ModelForbiddenMessage(id), "model_id: not in this API key's models")
	}
	return false
}

// ModelAllowed reports, without writing anything, whether the request's key
// may use model id: for lists, which show only what the key may use.
func ModelAllowed(r *http.Request, id string) bool { return GrantOf(r).Allows(id) }

// RequireAdmin checks that the request's key may change server state, and
// otherwise writes a 403 that says why and returns false.
func RequireAdmin(w http.ResponseWriter, r *http.Request) bool {
	g := GrantOf(r)
	if g == nil || g.Admin {
		return true
	}
	httperr.Write(w, r, http.StatusForbidden, fmt.Sprintf(
		"The API key '%s' is not an admin key: %s %s changes server state. An operator grants this with 'admin %s' in impetus_auth.",
		g.ID, r.Method, r.URL.Path, g.ID))
	return false
}

// AdminOnly wraps a state-changing handler with RequireAdmin.
func AdminOnly(fn func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if RequireAdmin(w, r) {
			fn(w, r)
		}
	}
}
