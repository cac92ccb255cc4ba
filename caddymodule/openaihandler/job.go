package openaihandler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/chat"
	"github.com/impetusllm/impetus/inference/sample"
)

// choiceEvent is one engine event of one choice.
type choiceEvent struct {
	index int
	inference.Event
}

// job is the engine work of one request: one sequence per choice.
type job struct {
	lm        *inference.LoadedModel
	prompts   [][]int32 // per choice
	maxTokens []int     // per choice
	params    []sample.Params
	stop      []string
	// constraint, when set, makes a fresh constraint for each choice.
	constraint func() inference.Constraint
	// logger reports generations stopped because the client left.
	logger *zap.Logger
	// key identifies the client (its API key id) for per-key admission.
	key string
	// noCache keeps the request out of the prefix cache (use_cache: false).
	noCache bool
	// keep lists special tokens whose text the output keeps (tool-call markers).
	keep []int32

	cached atomic.Int64 // prompt tokens served from the prefix cache
}

// usage builds the response's usage, with the prefix-cache hit when there was one.
func (j *job) usage(prompt, completion int) openai.Usage {
	u := openai.NewUsage(prompt, completion)
	if c := int(j.cached.Load()); c > 0 {
		u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: c}
	}
	return u
}

// clientKey is the API key id of the request, "" when anonymous.
func clientKey(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		id, _ := repl.GetString("http.auth.user.id")
		return id
	}
	return ""
}

// writeEngineError answers a failure to start or run a generation; a full
// queue gets Retry-After.
func writeEngineError(w http.ResponseWriter, err error, model string) {
	if errors.Is(err, inference.ErrQueueFull) {
		w.Header().Set("Retry-After", "1")
	}
	openai.WriteError(w, engineError(err, model))
}

// run starts every choice's sequence and merges their events into one
// channel, closed when all choices have finished. If starting any choice
// fails, the ones already started are cancelled.
func (j *job) run(ctx context.Context) (<-chan choiceEvent, error) {
	client := ctx
	ctx, cancel := context.WithCancel(ctx)
	streams := make([]<-chan inference.Event, len(j.prompts))
	for i := range j.prompts {
		greq := inference.GenerateRequest{Prompt: j.prompts[i], MaxTokens: j.maxTokens[i], Sampling: j.params[i], Stop: j.stop, Key: j.key, NoPrefixCache: j.noCache, KeepTokens: j.keep}
		if j.constraint != nil {
			greq.Constraint = j.constraint()
		}
		ch, err := j.lm.Generate(ctx, greq)
		if err != nil {
			cancel()
			return nil, err
		}
		streams[i] = ch
	}
	out := make(chan choiceEvent, 16)
	var wg sync.WaitGroup
	var dropped atomic.Int32 // choices the engine ended without a final event
	for i, ch := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			final := false
			for ev := range ch {
				final = ev.Finish != "" || ev.Err != nil
				if ev.CachedTokens > 0 {
					j.cached.Store(int64(ev.CachedTokens)) // the shared prompt: one figure per request
				}
				select {
				case out <- choiceEvent{i, ev}:
				case <-ctx.Done():
				}
			}
			if !final {
				dropped.Add(1)
			}
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	if j.logger != nil {
		// When the client leaves, the engine drops its sequences at the next
		// step; log how long that took so the stop can be seen and measured.
		go func() {
			<-ctx.Done()
			if client.Err() == nil {
				return // finished normally
			}
			left := time.Now()
			wg.Wait()
			if n := dropped.Load(); n > 0 {
				j.logger.Info("client left; generation stopped",
					zap.Int("choices", int(n)),
					zap.Float64("stop_ms", float64(time.Since(left).Microseconds())/1000))
			}
		}()
	}
	return out, nil
}

// engineError maps an engine failure to the API error a client sees.
func engineError(err error, model string) *openai.Error {
	switch {
	case errors.Is(err, inference.ErrModelNotFound):
		return openai.ModelNotFound(model)
	case errors.Is(err, inference.ErrContextOverflow):
		return openai.InvalidRequest("max_tokens", err.Error())
	case errors.Is(err, inference.ErrFormatUnsupported):
		return openai.InvalidRequest("model", err.Error())
	case errors.Is(err, inference.ErrTooManyModels):
		return openai.Unavailable(err.Error())
	case errors.Is(err, inference.ErrQueueFull):
		return openai.RateLimited("the server is busy: too many requests are queued; retry later")
	case errors.Is(err, inference.ErrUnloaded):
		return openai.Unavailable("the model was unloaded; retry the request")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return openai.Unavailable("request cancelled")
	}
	return openai.Internal("generation failed")
}

// samplingParams turns the request's sampling fields into engine parameters.
// Choice i of a seeded request uses sample.ChoiceSeed(seed, i): choices
// differ, none repeats another request's choice 0, and the whole response is
// reproducible.
func samplingParams(s openai.Sampling, logprobs bool, topLogprobs int, vocab int, choice int) (sample.Params, *openai.Error) {
	p := sample.DefaultParams()
	if s.Temperature != nil {
		p.Temperature = float32(*s.Temperature)
	}
	if s.TopP != nil {
		p.TopP = float32(*s.TopP)
	}
	if s.TopK != nil {
		p.TopK = *s.TopK
	}
	if s.MinP != nil {
		p.MinP = float32(*s.MinP)
	}
	if s.FrequencyPenalty != nil {
		p.FrequencyPenalty = float32(*s.FrequencyPenalty)
	}
	if s.PresencePenalty != nil {
		p.PresencePenalty = float32(*s.PresencePenalty)
	}
	if s.RepetitionPenalty != nil {
		p.RepetitionPenalty = float32(*s.RepetitionPenalty)
	}
	if len(s.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(s.LogitBias))
		for id, b := range s.LogitBias {
			if id >= vocab {
				return p, openai.InvalidRequest("logit_bias", fmt.Sprintf("token id %d is outside the model's vocabulary (0..%d)", id, vocab-1))
			}
			p.LogitBias[int32(id)] = float32(b)
		}
	}
	if s.Seed != nil {
		seed := sample.ChoiceSeed(uint64(*s.Seed), choice)
		p.Seed = &seed
	}
	p.Logprobs = logprobs
	p.TopLogprobs = topLogprobs
	return p, nil
}

// budget returns max_tokens for a prompt: the request's value, else what the
// context leaves. It refuses prompts that leave no room, with the numbers.
func budget(lm *inference.LoadedModel, promptLen int, requested int, explicit bool) (int, *openai.Error) {
	ctxLen := lm.Meta.ContextLength
	room := ctxLen - promptLen
	// The KV budget may hold less than the context: a default max_tokens
	// must fit it, or the request would be refused for a limit it never set.
	if seqMax := lm.MaxSequenceTokens(); !explicit && seqMax-promptLen < room {
		room = seqMax - promptLen
	}
	if room <= 0 {
		return 0, openai.InvalidRequest("messages", fmt.Sprintf("This model's maximum context length is %d tokens, but the prompt has %d tokens.", ctxLen, promptLen))
	}
	if !explicit {
		return room, nil
	}
	if requested > room {
		return 0, openai.InvalidRequest("max_tokens", fmt.Sprintf("This model's maximum context length is %d tokens. The prompt has %d tokens and max_tokens is %d, which exceeds the remaining %d.", ctxLen, promptLen, requested, room))
	}
	return requested, nil
}

// loadModel resolves the request's model through the checked load path
// (models.Manager.LoadChecked), honouring the API key's model allow-list. A 503 with a
// Retry-After sets it on w.
func (h *OpenAI) loadModel(w http.ResponseWriter, r *http.Request, id string) (*inference.LoadedModel, *openai.Error) {
	if id == "" {
		return nil, openai.InvalidRequest("model", "model is required")
	}
	if !auth.ModelAllowed(r, id) {
		e := openai.Forbidden(auth.ModelForbiddenMessage(id))
		param := "model"
		e.Param = &param
		return nil, e
	}
	// An embedding model is refused before the load machinery sees it (it
	// would report a failed load); a loaded chat model skips the disk scan.
	if h.app.Engine().LoadedModelByID(id) != nil {
		return h.loadForRequest(w, r, id)
	}
	if info, err := h.app.Engine().FindModel(id); err == nil && info.Kind == inference.KindEmbedding {
		return nil, openai.InvalidRequest("model", id+" is an embedding model; use /v1/embeddings with it")
	}
	return h.loadForRequest(w, r, id)
}

// unsupportedChatField names the first field of a request that Impetus accepts in
// the wire format but does not implement, so the client gets a 400 naming it
// instead of a silently ignored field.
func unsupportedChatField(req *openai.ChatRequest) string {
	switch {
	case len(req.Audio) > 0:
		return "audio"
	case len(req.Prediction) > 0:
		return "prediction"
	case len(req.WebSearchOptions) > 0:
		return "web_search_options"
	case len(req.Functions) > 0:
		return "functions"
	case len(req.FunctionCall) > 0:
		return "function_call"
	case req.ReasoningEffort != "":
		return "reasoning_effort"
	}
	for _, m := range req.Modalities {
		if m != "text" {
			return "modalities"
		}
	}
	return ""
}

// chatMessages converts request messages for the template. The developer
// role is the newer name of system; templates know only system.
func chatMessages(msgs []openai.Message) []chat.Message {
	out := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		role := m.Role
		if role == openai.RoleDeveloper {
			role = openai.RoleSystem
		}
		out[i] = chat.Message{Role: role, Content: chat.TextContent(m.Text()), Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			out[i].ToolCalls = append(out[i].ToolCalls, chat.ToolCall{ID: tc.ID, Type: tc.Type, Function: chat.FunctionCall{Name: tc.Function.Name, Arguments: argumentsJSON(tc.Function.Arguments)}})
		}
	}
	return out
}

// tokenLogprob renders one generated token for logprobs.content.
func tokenLogprob(lm *inference.LoadedModel, ev inference.Event) openai.TokenLogprob {
	b := lm.Tokenizer.TokenBytes(ev.Token)
	tl := openai.TokenLogprob{Token: string(b), Logprob: openai.Logprob(ev.Logprob), Bytes: bytesOf(b), TopLogprobs: []openai.TopLogprob{}}
	for _, t := range ev.Top {
		tb := lm.Tokenizer.TokenBytes(t.Token)
		tl.TopLogprobs = append(tl.TopLogprobs, openai.TopLogprob{Token: string(tb), Logprob: openai.Logprob(t.Logprob), Bytes: bytesOf(tb)})
	}
	return tl
}

func bytesOf(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

// tokenRecord keeps what legacy logprobs need of one generated token.
type tokenRecord struct {
	token   int32
	logprob float32
	top     []sample.TokenLogprob
}

// legacyLogprobs builds the completions endpoint's parallel-array logprobs;
// text offsets count bytes from the start of the choice's text.
func legacyLogprobs(lm *inference.LoadedModel, recs []tokenRecord, offset int) *openai.TextLogprobs {
	lp := &openai.TextLogprobs{}
	for _, rec := range recs {
		tok := string(lm.Tokenizer.TokenBytes(rec.token))
		lp.Tokens = append(lp.Tokens, tok)
		lp.TokenLogprobs = append(lp.TokenLogprobs, openai.Logprob(rec.logprob))
		top := make(openai.TopLogprobMap, 0, len(rec.top))
		for _, t := range rec.top {
			top = append(top, openai.TopLogprob{Token: string(lm.Tokenizer.TokenBytes(t.Token)), Logprob: openai.Logprob(t.Logprob)})
		}
		lp.TopLogprobs = append(lp.TopLogprobs, top)
		lp.TextOffset = append(lp.TextOffset, offset)
		offset += len(tok)
	}
	return lp
}
