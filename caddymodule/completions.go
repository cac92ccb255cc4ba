package caddymodule

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// completions serves POST /v1/completions (legacy text completions). Each
// prompt of the request yields n choices, indexed prompt*n+i.
func (h *OpenAI) completions(w http.ResponseWriter, r *http.Request) {
	acct, w := h.beginUsage(w, r, "completions")
	defer h.endUsage(acct)
	r.Body = http.MaxBytesReader(w, r.Body, h.limits.MaxBodyBytes)
	req, e := openai.DecodeCompletionRequest(r.Body, h.limits)
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	switch {
	case req.Suffix != nil && *req.Suffix != "":
		openai.WriteError(w, openai.InvalidRequest("suffix", "'suffix' (fill-in-the-middle) is not supported by this server"))
		return
	case req.BestOf != nil && *req.BestOf != req.Choices():
		openai.WriteError(w, openai.InvalidRequest("best_of", "'best_of' other than n is not supported by this server"))
		return
	case req.Echo && req.Logprobs != nil:
		openai.WriteError(w, openai.InvalidRequest("echo", "'echo' together with 'logprobs' is not supported by this server"))
		return
	}
	lm, e := h.loadModel(w, r, req.Model)
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	acct.setModel(lm.Info.ID)
	var prompts [][]int32
	var promptTexts []string
	for _, t := range req.Prompt.Texts {
		prompts = append(prompts, lm.Tokenizer.Encode(t, true))
		promptTexts = append(promptTexts, t)
	}
	for _, toks := range req.Prompt.Tokens {
		ids := make([]int32, len(toks))
		for i, t := range toks {
			if t < 0 || t >= lm.Meta.Vocab {
				openai.WriteError(w, openai.InvalidRequest("prompt", "token id out of the model's vocabulary"))
				return
			}
			ids[i] = int32(t)
		}
		prompts = append(prompts, ids)
		promptTexts = append(promptTexts, lm.Tokenizer.Decode(ids, false))
	}
	requested, explicit := 16, true // OpenAI's default max_tokens for completions
	if req.MaxTokens != nil {
		requested = *req.MaxTokens
	}
	n := req.Choices()
	topLogprobs, wantLogprobs := 0, req.Logprobs != nil
	if wantLogprobs {
		topLogprobs = *req.Logprobs
	}
	j := &job{lm: lm, stop: req.Stop, logger: h.logger, key: clientKey(r)}
	promptTokens := 0
	for pi, p := range prompts {
		if len(p) == 0 {
			openai.WriteError(w, openai.InvalidRequest("prompt", "the prompt is empty"))
			return
		}
		promptTokens += len(p)
		maxTokens, e := budget(lm, len(p), requested, explicit)
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		for i := range n {
			p2, e := samplingParams(req.Sampling, wantLogprobs, topLogprobs, lm.Meta.Vocab, pi*n+i)
			if e != nil {
				openai.WriteError(w, e)
				return
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
	if e := acct.charge(w, r, promptTokens, reserve); e != nil {
		openai.WriteError(w, e)
		return
	}
	events, err := j.run(r.Context())
	if err != nil {
		writeEngineError(w, err, req.Model)
		return
	}
	total := len(j.prompts)
	id := openai.NewCompletionID()
	if req.Stream {
		ts := openai.TextStream{ID: id, Created: openai.Created(), Model: req.Model, IncludeUsage: req.IncludeUsage()}
		sse := openai.NewSSE(w)
		if req.Echo {
			for i := range total {
				if sse.Send(ts.Chunk(openai.TextChoice{Index: i, Text: promptTexts[i/n]})) != nil {
					return
				}
			}
		}
		for {
			ev, done, failed := h.nextStreamEvent(sse, events, req.Model, acct)
			if failed {
				return
			}
			if done {
				break
			}
			c := openai.TextChoice{Index: ev.index, Text: ev.Text, FinishReason: ev.Finish}
			if ev.HasToken {
				if wantLogprobs {
					c.Logprobs = legacyLogprobs(h, lm, []tokenRecord{{ev.Token, ev.Logprob, ev.Top}}, 0)
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
			openai.WriteError(w, engineError(ev.Err, req.Model))
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
		if req.Echo {
			choices[i].Text = promptTexts[i/n] + choices[i].Text
			offset = len(promptTexts[i/n])
		}
		if wantLogprobs {
			choices[i].Logprobs = legacyLogprobs(h, lm, records[i], offset)
		}
	}
	u := j.usage(promptTokens, acct.completion)
	openai.WriteJSON(w, http.StatusOK, openai.TextCompletion{ID: id, Created: openai.Created(), Model: req.Model, Choices: choices, Usage: &u})
}
