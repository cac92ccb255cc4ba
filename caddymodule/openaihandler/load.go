package openaihandler

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
	"go.uber.org/zap"
)

// loadForRequest loads the model of an OpenAI request through loadChecked
// and answers failures in the OpenAI error shape; a 503 that has a
// Retry-After sets it on w.
func (h *OpenAI) loadForRequest(w http.ResponseWriter, r *http.Request, id string) (*inference.LoadedModel, *openai.Error) {
	lm, _, err := h.app.Models().LoadChecked(r.Context(), id)
	if err == nil {
		return lm, nil
	}
	return nil, h.loadError(w, err, id)
}

// loadError answers a models.Manager load failure in the OpenAI error
// shape; a 503 that has a Retry-After sets it on w (when not nil).
func (h *OpenAI) loadError(w http.ResponseWriter, err error, id string) *openai.Error {
	var le *models.LoadError
	if !errors.As(err, &le) {
		return engineError(err, id)
	}
	if le.RetryAfter() > 0 && w != nil {
		w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter()))
	}
	switch le.Status() {
	case http.StatusNotFound:
		e := openai.ModelNotFound(id)
		if hint := models.HowToGet(id); hint != "" {
			e.Message += "; it is not on this server's disk: " + hint
		}
		return e
	case http.StatusInsufficientStorage:
		return openai.NewError(http.StatusInsufficientStorage, openai.TypeServer, le.Error()).WithCode("insufficient_memory")
	case http.StatusServiceUnavailable:
		if le.Unwrap() != nil {
			return engineError(le.Unwrap(), id)
		}
		return openai.Unavailable(le.Error())
	case http.StatusBadGateway:
		return openai.NewError(http.StatusBadGateway, openai.TypeServer, le.Error()).WithCode("download_failed")
	case http.StatusNotImplemented:
		return engineError(le.Unwrap(), id)
	}
	h.logger.Error("loading model", zap.String("model", id), zap.Error(err))
	return openai.Internal("loading the model failed")
}
