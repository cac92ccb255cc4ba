// Package openaihandler is the impetus_openai handler: the OpenAI-compatible
// /v1 endpoints (chat completions, completions, embeddings, models) served by the local
// engine, or by an upstream server when the app routes the model there. The
// wire types live in the openai package.
package openaihandler

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
)

func init() {
	caddy.RegisterModule(OpenAI{})
	httpcaddyfile.RegisterHandlerDirective("impetus_openai", parseOpenAI)
	httpcaddyfile.RegisterDirectiveOrder("impetus_openai", httpcaddyfile.Before, "respond")
}

// OpenAI serves the OpenAI-compatible API under /v1. Requests outside /v1
// pass on; unknown /v1 paths get an OpenAI-shaped 404.
type OpenAI struct {
	app    *app.App
	logger *zap.Logger
	limits openai.Limits
}

// CaddyModule returns the Caddy module information.
func (OpenAI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_openai",
		New: func() caddy.Module { return new(OpenAI) },
	}
}

// Provision finds the impetus app.
func (h *OpenAI) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	a, err := ctx.App("impetus")
	if err != nil {
		return err
	}
	h.app = a.(*app.App)
	h.limits = h.app.Limits.WithDefaults()
	return nil
}

// ServeHTTP routes /v1 requests.
func (h *OpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !httperr.IsOpenAIPath(r) {
		return next.ServeHTTP(w, r)
	}
	path := r.URL.Path
	switch {
	case path == "/v1/chat/completions", path == "/v1/completions", path == "/v1/embeddings":
		if !allowMethod(w, r, http.MethodPost) {
			return nil
		}
		ep := map[string]endpoint{"/v1/chat/completions": endpointChat, "/v1/completions": endpointCompletions, "/v1/embeddings": endpointEmbeddings}[path]
		in, routed, err := h.proxyIfRouted(w, r, next, ep)
		if routed {
			return err
		}
		switch ep {
		case endpointChat:
			h.chatCompletions(w, r, in)
		case endpointCompletions:
			h.completions(w, r, in)
		default:
			h.embeddings(w, r, in)
		}
		return nil
	case path == "/v1/models":
		if !allowMethod(w, r, http.MethodGet) {
			return nil
		}
		h.listModels(w, r)
		return nil
	case strings.HasPrefix(path, "/v1/models/"):
		if !allowMethod(w, r, http.MethodGet) {
			return nil
		}
		// Ids contain "/": take the raw remainder, decoding %2F too.
		raw := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/models/")
		id, err := url.PathUnescape(raw)
		if err != nil || id == "" {
			httperr.WriteOpenAI(w, http.StatusBadRequest, "invalid model id in path", "model")
			return nil
		}
		h.getModel(w, r, id)
		return nil
	}
	httperr.WriteOpenAI(w, http.StatusNotFound, "Unknown endpoint: "+r.Method+" "+path, "")
	return nil
}

// allowMethod answers 405 (OpenAI shape) unless the request uses method.
func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	httperr.WriteOpenAI(w, http.StatusMethodNotAllowed, "Method "+r.Method+" not allowed; use "+method, "")
	return false
}

func (h *OpenAI) listModels(w http.ResponseWriter, r *http.Request) {
	models, err := h.app.Engine().Models()
	if err != nil {
		h.logger.Error("listing models", zap.Error(err))
		httperr.WriteOpenAI(w, http.StatusInternalServerError, "could not list models", "")
		return
	}
	data := make([]openai.Model, 0, len(models))
	local := map[string]bool{}
	for _, m := range models {
		local[m.ID] = true
		if auth.ModelAllowed(r, m.ID) {
			data = append(data, localModel(m))
		}
	}
	for _, m := range h.app.UpstreamModels() {
		if !local[m.ID] && auth.ModelAllowed(r, m.ID) {
			data = append(data, m)
		}
	}
	httperr.WriteJSON(w, http.StatusOK, openai.ModelList{Data: data})
}

func (h *OpenAI) getModel(w http.ResponseWriter, r *http.Request, id string) {
	if !auth.ModelAllowed(r, id) { // as OpenAI does: a model the key may not use does not exist for it
		httperr.WriteOpenAI(w, http.StatusNotFound, "The model '"+id+"' does not exist", "model")
		return
	}
	m, err := h.app.Engine().FindModel(id)
	if errors.Is(err, inference.ErrModelNotFound) {
		for _, um := range h.app.UpstreamModels() {
			if um.ID == id {
				httperr.WriteJSON(w, http.StatusOK, um)
				return
			}
		}
		httperr.WriteOpenAI(w, http.StatusNotFound, "The model '"+id+"' does not exist", "model")
		return
	}
	if err != nil {
		h.logger.Error("finding model", zap.Error(err))
		httperr.WriteOpenAI(w, http.StatusInternalServerError, "could not look up the model", "")
		return
	}
	httperr.WriteJSON(w, http.StatusOK, localModel(m))
}

// localModel is the /v1/models entry of a model on disk, with its kind.
func localModel(m inference.LocalModel) openai.Model {
	om := openai.NewModel(m.ID, m.Modified.Unix())
	om.Kind = string(inference.KindChat)
	if m.Kind != "" {
		om.Kind = string(m.Kind)
	}
	return om
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	impetus_openai
func (h *OpenAI) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("impetus_openai takes no block")
	}
	return nil
}

func parseOpenAI(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	o := new(OpenAI)
	err := o.UnmarshalCaddyfile(h.Dispenser)
	return o, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*OpenAI)(nil)
	_ caddyhttp.MiddlewareHandler = (*OpenAI)(nil)
	_ caddyfile.Unmarshaler       = (*OpenAI)(nil)
)
