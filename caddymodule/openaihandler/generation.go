package openaihandler

import (
	"io"
	"net/http"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
)

// request is a generation request's body, decoded once: by proxyIfRouted
// when the app routes models (routing needs the model), else by the
// endpoint as it starts. err is the decoder's refusal.
type request struct {
	chat  *openai.ChatRequest
	text  *openai.CompletionRequest
	embed *openai.EmbeddingRequest
	err   *openai.Error
}

// endpoint names a request-serving /v1 endpoint, as the metrics label it.
type endpoint string

const (
	endpointChat        endpoint = "chat.completions"
	endpointCompletions endpoint = "completions"
	endpointEmbeddings  endpoint = "embeddings"
)

// decodeRequest decodes the body of a request to ep within the body limit.
// w is only told when the limit is hit (see http.MaxBytesReader); it may
// be nil.
func (h *OpenAI) decodeRequest(w http.ResponseWriter, body io.ReadCloser, ep endpoint) *request {
	body = http.MaxBytesReader(w, body, h.limits.MaxBodyBytes)
	in := &request{}
	switch ep {
	case endpointChat:
		in.chat, in.err = openai.DecodeChatRequest(body, h.limits)
	case endpointCompletions:
		in.text, in.err = openai.DecodeCompletionRequest(body, h.limits)
	case endpointEmbeddings:
		in.embed, in.err = openai.DecodeEmbeddingRequest(body, h.limits)
	}
	return in
}

// generation is one endpoint's part of a request that serveGeneration
// runs: chat completions and text completions differ in how they turn the
// request into prompts and how they write the reply, and share the rest.
type generation interface {
	// model is the model id the request names.
	model() string
	// check refuses what the endpoint does not support, before any model
	// loads.
	check() *openai.Error
	// plan builds the job for the loaded model and reports the prompt
	// tokens and the most tokens the request may use in all, for the
	// key's token budget.
	plan(h *OpenAI, r *http.Request, lm *inference.LoadedModel) (j *job, promptTokens, reserve int, e *openai.Error)
	// respond writes the reply from the running job's events.
	respond(h *OpenAI, w http.ResponseWriter, r *http.Request, j *job, events <-chan choiceEvent, acct *usage)
}

// serveGeneration is the skeleton of both generation endpoints. It follows
// the request for metrics and budgets from arrival to its last byte,
// decodes the body unless in holds it already (decode builds the endpoint's
// generation from it), loads the model, charges the key's token budget for
// the job the endpoint plans, starts it, and leaves the reply to the
// endpoint.
func (h *OpenAI) serveGeneration(w http.ResponseWriter, r *http.Request, ep endpoint, in *request, build func(in *request) generation) {
	acct, w := h.beginUsage(w, r, string(ep))
	defer h.endUsage(acct)
	if in == nil {
		in = h.decodeRequest(w, r.Body, ep)
	}
	if in.err != nil {
		openai.WriteError(w, in.err)
		return
	}
	g := build(in)
	if e := g.check(); e != nil {
		openai.WriteError(w, e)
		return
	}
	lm, e := h.loadModel(w, r, g.model())
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	acct.setModel(lm.Info.ID)
	j, promptTokens, reserve, e := g.plan(h, r, lm)
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	if e := acct.charge(w, r, promptTokens, reserve); e != nil {
		openai.WriteError(w, e)
		return
	}
	events, err := j.run(r.Context())
	if err != nil {
		writeEngineError(w, err, g.model())
		return
	}
	g.respond(h, w, r, j, events, acct)
}
