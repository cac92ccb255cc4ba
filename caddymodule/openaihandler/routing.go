package openaihandler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/metrics"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/caddymodule/ratelimit"
	"go.uber.org/zap"
)

// routedRequest is what routing needs from a request body.
type routedRequest struct {
	Model          string          `json:"model"`
	ConversationID string          `json:"conversation_id"`
	Messages       json.RawMessage `json:"messages"`
	Prompt         json.RawMessage `json:"prompt"`
}

// proxyIfRouted sends the request upstream when its model is routed there,
// and reports whether it did. It buffers the body (within the size limit)
// and decodes it once: a request served here gets that decoded body (in),
// so the endpoint does not parse it again. A body this server's decoder
// refuses may still suit an upstream, so then the model is read from the
// raw JSON. in is nil when the app routes no models, or when the body could
// not be buffered (the endpoint reports the error).
func (h *OpenAI) proxyIfRouted(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ep endpoint) (in *request, routed bool, err error) {
	if len(h.app.Routes) == 0 {
		return nil, false, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.limits.MaxBodyBytes+1))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil || int64(len(body)) > h.limits.MaxBodyBytes {
		return nil, false, nil // the local handler reports the error
	}
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	in = h.decodeRequest(nil, io.NopCloser(bytes.NewReader(body)), ep)
	var req routedRequest
	switch {
	case in.chat != nil:
		req.Model, req.ConversationID = in.chat.Model, in.chat.ConversationID
	case in.text != nil:
		req.Model = in.text.Model
	case in.embed != nil:
		req.Model = in.embed.Model
	default:
		if json.Unmarshal(body, &req) != nil {
			return in, false, nil
		}
	}
	rt := h.app.RouteFor(req.Model)
	if rt == nil {
		return in, false, nil
	}
	if rt.Fallback {
		if _, err := h.app.Engine().FindModel(req.Model); err == nil {
			return in, false, nil
		}
	}
	if !auth.AuthorizeModel(w, r, req.Model) {
		return nil, true, nil
	}
	if req.ConversationID == "" && in.err == nil {
		// The digest of the conversation is taken over the raw JSON, as
		// for bodies the decoder refused, so a conversation keeps its
		// upstream whichever way its turns were read.
		_ = json.Unmarshal(body, &req)
	}
	r.Header.Set(app.AffinityHeader, affinityKey(req))
	timer := metrics.StartRequest(r, string(ep))
	timer.SetModel(req.Model)
	budget, _ := caddyhttp.GetVar(r.Context(), ratelimit.TokenBudgetVar).(*ratelimit.TokenBudget)
	if budget != nil && budget.Exhausted(time.Now()) {
		// The front has no tokenizer for upstream models, so it cannot
		// reserve a request's worst case; it refuses once the reported
		// usage has spent the budget.
		w.Header().Set("Retry-After", "60")
		httperr.WriteOpenAI(w, http.StatusTooManyRequests, "Token budget exceeded; retry later", "")
		timer.Finish(http.StatusTooManyRequests, 0, 0)
		return nil, true, nil
	}
	sniff := &usageSniffer{ResponseWriter: w}
	err = rt.Proxy(sniff, r, next)
	var he caddyhttp.HandlerError
	if err != nil && sniff.status == 0 && errors.As(err, &he) {
		// The proxy wrote nothing (no healthy upstream, or none answered):
		// answer in the OpenAI shape here, so clients get a parseable error
		// that names the model whether or not the site has handle_errors.
		status := he.StatusCode
		if status < 400 {
			status = http.StatusBadGateway
		}
		h.logger.Warn("no upstream served a routed request", zap.String("model", req.Model), zap.Int("status", status), zap.Error(err))
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "10")
			openai.WriteError(w, openai.Unavailable("no healthy upstream serves the model '"+req.Model+"' right now; retry later"))
		} else {
			httperr.WriteOpenAI(w, status, "the upstream serving the model '"+req.Model+"' failed to answer", "")
		}
		timer.Finish(status, 0, 0)
		return nil, true, nil
	}
	prompt, completion := sniff.usage()
	status := sniff.status
	if status == 0 {
		status = http.StatusBadGateway
	}
	timer.Finish(status, prompt, completion)
	if budget != nil {
		budget.Spend(prompt+completion, time.Now())
	}
	return nil, true, err
}

// usageSniffer passes an upstream response through untouched while keeping
// its tail, where OpenAI-compatible servers put usage (the last JSON field,
// or the final include_usage chunk of a stream).
type usageSniffer struct {
	http.ResponseWriter
	status int
	tail   []byte
}

const sniffTail = 64 << 10

func (u *usageSniffer) WriteHeader(code int) {
	if u.status == 0 {
		u.status = code
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *usageSniffer) Write(b []byte) (int, error) {
	if u.status == 0 {
		u.status = http.StatusOK
	}
	u.tail = append(u.tail, b...)
	if len(u.tail) > sniffTail {
		u.tail = append(u.tail[:0], u.tail[len(u.tail)-sniffTail:]...)
	}
	return u.ResponseWriter.Write(b)
}

func (u *usageSniffer) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// usage reads the last usage object the upstream reported; zeros when it
// reported none (a stream without include_usage).
func (u *usageSniffer) usage() (prompt, completion int) {
	i := bytes.LastIndex(u.tail, []byte(`"usage":{`))
	if i < 0 {
		return 0, 0
	}
	var us struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
	if json.NewDecoder(bytes.NewReader(u.tail[i+len(`"usage":`):])).Decode(&us) != nil {
		return 0, 0
	}
	return us.PromptTokens, us.CompletionTokens
}

// affinityKey is the conversation id, else a digest of the conversation so
// far (every message but the last), so later turns reach the same upstream.
func affinityKey(req routedRequest) string {
	if req.ConversationID != "" {
		return "c:" + req.ConversationID
	}
	prefix := req.Prompt
	var msgs []json.RawMessage
	if json.Unmarshal(req.Messages, &msgs) == nil && len(msgs) > 0 {
		if len(msgs) > 1 {
			msgs = msgs[:len(msgs)-1]
		}
		prefix, _ = json.Marshal(msgs)
	}
	if len(prefix) > 4096 {
		prefix = prefix[:4096]
	}
	sum := sha256.Sum256(append([]byte(req.Model+"\x00"), prefix...))
	return "p:" + hex.EncodeToString(sum[:12])
}
