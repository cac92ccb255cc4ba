package openaihandler

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
)

// embeddings serves POST /v1/embeddings with the engine's embedding
// models; in is the decoded body when routing decoded it already. It is
// followed for metrics, the key's token budget (prompt tokens) and
// inference_stats like the generation endpoints.
func (h *OpenAI) embeddings(w http.ResponseWriter, r *http.Request, in *request) {
	acct, w := h.beginUsage(w, r, string(endpointEmbeddings))
	defer h.endUsage(acct)
	if in == nil {
		in = h.decodeRequest(w, r.Body, endpointEmbeddings)
	}
	if in.err != nil {
		openai.WriteError(w, in.err)
		return
	}
	req := in.embed
	m, e := h.loadEmbedding(w, r, req.Model)
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	acct.setModel(m.Info.ID)
	if err := m.CheckDimensions(req.Dimensions); err != nil {
		openai.WriteError(w, openai.InvalidRequest("dimensions", "dimensions: "+err.Error()))
		return
	}
	inputs := inference.EmbedInputs{Texts: req.Input.Texts}
	for _, toks := range req.Input.Tokens {
		ids := make([]int32, len(toks))
		for i, t := range toks {
			ids[i] = int32(t)
		}
		inputs.TokenIDs = append(inputs.TokenIDs, ids)
	}
	// The budget is charged before the work with a bound on the tokens
	// (a token covers at least one byte of text; no input runs past the
	// model's maximum), and the unused part refunded at the end.
	reserve := embedReserve(m, inputs)
	if e := acct.charge(w, r, reserve, reserve); e != nil {
		openai.WriteError(w, e)
		return
	}
	res, err := h.app.Engine().Embed(r.Context(), m.Info.ID, inputs,
		inference.EmbedOptions{Truncate: h.app.EmbeddingsTruncate, Dimensions: req.Dimensions})
	if err != nil {
		acct.prompt = 0
		e := embedError(err, req.Model)
		if e.Status >= 500 {
			h.logger.Error("embedding failed", zap.String("model", req.Model), zap.Error(err))
		}
		openai.WriteError(w, e)
		return
	}
	acct.prompt = res.PromptTokens
	if r.Context().Err() != nil {
		return
	}
	openai.WriteJSON(w, http.StatusOK, openai.EmbeddingList{
		Model: req.Model, Vectors: res.Embeddings, Base64: req.EncodingFormat == openai.EncodingBase64, PromptTokens: res.PromptTokens})
}

// loadEmbedding checks that the key may use the model and that it is an
// embedding model, and loads it on demand (fetching it first when
// auto_download allows, as for chat models).
func (h *OpenAI) loadEmbedding(w http.ResponseWriter, r *http.Request, id string) (*inference.EmbeddingModel, *openai.Error) {
	if !auth.ModelAllowed(r, id) {
		e := openai.Forbidden(auth.ModelForbiddenMessage(id))
		param := "model"
		e.Param = &param
		return nil, e
	}
	if h.app.Engine().LoadedModelByID(id) != nil {
		return nil, openai.InvalidRequest("model", id+" is a chat model; /v1/embeddings needs an embedding model")
	}
	if h.app.Engine().EmbeddingModelByID(id) == nil {
		if _, err := h.app.Models().FindOrFetch(r.Context(), id); err != nil {
			return nil, h.loadError(w, err, id)
		}
	}
	// LoadEmbedding finds the model (a chat one is ErrNotEmbeddingModel);
	// once it is loaded it returns at once, without a scan of the disk.
	m, err := h.app.Engine().LoadEmbedding(r.Context(), id)
	if err != nil {
		e := embedError(err, id)
		if e.Status >= 500 {
			h.logger.Error("loading embedding model", zap.String("model", id), zap.Error(err))
		}
		return nil, e
	}
	return m, nil
}

// embedReserve bounds the prompt tokens of inputs for the token budget.
func embedReserve(m *inference.EmbeddingModel, in inference.EmbedInputs) int {
	extra := len(m.Tokenizer.PostProcess(nil))
	if p := m.Spec.Prompts[m.Spec.DefaultPrompt]; p != "" {
		extra += len(p)
	}
	n := 0
	for _, t := range in.Texts {
		n += min(len(t)+extra, m.MaxTokens)
	}
	for _, t := range in.TokenIDs {
		n += min(len(t)+extra, m.MaxTokens)
	}
	return n
}

// embedError maps an Embed or LoadEmbedding error to its OpenAI error.
func embedError(err error, model string) *openai.Error {
	var tooLong *inference.InputTooLongError
	switch {
	case errors.As(err, &tooLong):
		return openai.InvalidRequest("input", fmt.Sprintf(
			"input[%d] has %d tokens, more than the maximum of %d tokens of model %s; shorten it (or the server may turn on embeddings_truncate)",
			tooLong.Index, tooLong.Tokens, tooLong.Max, model)).WithCode("context_length_exceeded")
	case errors.Is(err, inference.ErrEmptyInput), errors.Is(err, inference.ErrTooManyInputs), errors.Is(err, inference.ErrInvalidInput):
		return openai.InvalidRequest("input", err.Error())
	case errors.Is(err, inference.ErrNotEmbeddingModel):
		return openai.InvalidRequest("model", model+" is a chat model; /v1/embeddings needs an embedding model")
	case errors.Is(err, inference.ErrModelNotFound):
		e := openai.ModelNotFound(model)
		if hint := models.HowToGet(model); hint != "" {
			e.Message += "; it is not on this server's disk: " + hint
		}
		return e
	}
	return engineError(err, model)
}
