package openaihandler

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
)

// completions serves POST /v1/completions (legacy text completions); in is
// the decoded body when routing decoded it already. Each prompt of the
// request yields n choices, indexed prompt*n+i.
func (h *OpenAI) completions(w http.ResponseWriter, r *http.Request, in *request) {
	h.serveGeneration(w, r, endpointCompletions, in, func(in *request) generation { return &textGeneration{req: in.text} })
}

// textGeneration is a text completion: the request, and what plan finds for
// respond.
type textGeneration struct {
	req          *openai.CompletionRequest
	lm           *inference.LoadedModel
	promptTexts  []string
	promptTokens int
	n            int
	wantLogprobs bool
}

func (g *textGeneration) model() string { return g.req.Model }

func (g *textGeneration) check() *openai.Error {
	switch {
	case g.req.Suffix != nil && *g.req.Suffix != "":
		return openai.InvalidRequest("suffix", "'suffix' (fill-in-the-middle) is not supported by this server")
	case g.req.BestOf != nil && *g.req.BestOf != g.req.Choices():
		return openai.InvalidRequest("best_of", "'best_of' other than n is not supported by this server")
	case g.req.Echo && g.req.Logprobs != nil:
		return openai.InvalidRequest("echo", "'echo' together with 'logprobs' is not supported by this server")
	}
	return nil
}

// plan tokenizes the prompts (or takes their token ids) and gives each n
// choices.
func (g *textGeneration) plan(h *OpenAI, r *http.Request, lm *inference.LoadedModel) (*job, int, int, *openai.Error) {
	var prompts [][]int32
	var promptTexts []string
	for _, t := range g.req.Prompt.Texts {
		prompts = append(prompts, lm.Tokenizer.Encode(t, true))
		promptTexts = append(promptTexts, t)
	}
	for _, toks := range g.req.Prompt.Tokens {
		ids := make([]int32, len(toks))
		for i, t := range toks {
			if t < 0 || t >= lm.Meta.Vocab {
				return nil, 0, 0, openai.InvalidRequest("prompt", "token id out of the model's vocabulary")
			}
			ids[i] = int32(t)
		}
		prompts = append(prompts, ids)
		promptTexts = append(promptTexts, lm.Tokenizer.Decode(ids, false))
	}
	requested, explicit := 16, true // OpenAI's default max_tokens for completions
	if g.req.MaxTokens != nil {
		requested = *g.req.MaxTokens
	}
	n := g.req.Choices()
	topLogprobs, wantLogprobs := 0, g.req.Logprobs != nil
	if wantLogprobs {
		topLogprobs = *g.req.Logprobs
	}
	j := &job{lm: lm, stop: g.req.Stop, logger: h.logger, key: clientKey(r)}
	promptTokens := 0
	for pi, p := range prompts {
		if len(p) == 0 {
			return nil, 0, 0, openai.InvalidRequest("prompt", "the prompt is empty")
		}
		promptTokens += len(p)
		maxTokens, e := budget(lm, len(p), requested, explicit)
		if e != nil {
			return nil, 0, 0, e
		}
		for i := range n {
			p2, e := samplingParams(g.req.Sampling, wantLogprobs, topLogprobs, lm.Meta.Vocab, pi*n+i)
			if e != nil {
				return nil, 0, 0, e
			}
			j.prompts = append(j.prompts, p)
			j.maxTokens = append(j.maxTokens, maxTokens)
			j.params = append(j.params, p2)
		}
	}
	reserve := promptTokens
	for _, mt := range j.maxTokens {
		reserve += mt
	}
	g.lm, g.promptTexts, g.promptTokens, g.n, g.wantLogprobs = lm, promptTexts, promptTokens, n, wantLogprobs
	return j, promptTokens, reserve, nil
}

// respond streams the completion or writes it whole.
func (g *textGeneration) respond(h *OpenAI, w http.ResponseWriter, r *http.Request, j *job, events <-chan choiceEvent, acct *usage) {
	lm, promptTexts, promptTokens, n, wantLogprobs := g.lm, g.promptTexts, g.promptTokens, g.n, g.wantLogprobs
	total := len(j.prompts)
	id := openai.NewCompletionID()
	if g.req.Stream {
		ts := openai.TextStream{ID: id, Created: openai.Created(), Model: g.req.Model, IncludeUsage: g.req.IncludeUsage()}
		sse := openai.NewSSE(w)
		if g.req.Echo {
			for i := range total {
				if sse.Send(ts.Chunk(openai.TextChoice{Index: i, Text: promptTexts[i/n]})) != nil {
					return
				}
			}
		}
		for {
			ev, done, failed := h.nextStreamEvent(sse, events, g.req.Model, acct)
			if failed {
				return
			}
			if done {
				break
			}
			c := openai.TextChoice{Index: ev.index, Text: ev.Text, FinishReason: ev.Finish}
			if ev.HasToken {
				if wantLogprobs {
					c.Logprobs = legacyLogprobs(lm, []tokenRecord{{ev.Token, ev.Logprob, ev.Top}}, 0)
				}
			}
			if c.Text == "" && c.FinishReason == "" && c.Logprobs == nil {
				continue
			}
			if sse.Send(ts.Chunk(c)) != nil {
				return
			}
		}
		if r.Context().Err() != nil {
			return
		}
		if ts.IncludeUsage {
			sse.Send(ts.UsageChunk(j.usage(promptTokens, acct.completion)))
		}
		sse.Done()
		return
	}
	texts := make([]strings.Builder, total)
	records := make([][]tokenRecord, total)
	choices := make([]openai.TextChoice, total)
	for ev := range events {
		if ev.Err != nil {
			h.logger.Error("generation failed", zap.Error(ev.Err))
			openai.WriteError(w, engineError(ev.Err, g.req.Model))
			return
		}
		texts[ev.index].WriteString(ev.Text)
		if ev.HasToken {
			acct.token(ev.index)
			records[ev.index] = append(records[ev.index], tokenRecord{ev.Token, ev.Logprob, ev.Top})
		}
		if ev.Finish != "" {
			choices[ev.index].FinishReason = ev.Finish
		}
	}
	if r.Context().Err() != nil {
		return
	}
	for i := range choices {
		choices[i].Index = i
		choices[i].Text = texts[i].String()
		offset := 0
		if g.req.Echo {
			choices[i].Text = promptTexts[i/n] + choices[i].Text
			offset = len(promptTexts[i/n])
		}
		if wantLogprobs {
			choices[i].Logprobs = legacyLogprobs(lm, records[i], offset)
		}
	}
	u := j.usage(promptTokens, acct.completion)
	openai.WriteJSON(w, http.StatusOK, openai.TextCompletion{ID: id, Created: openai.Created(), Model: g.req.Model, Choices: choices, Usage: &u})
}
