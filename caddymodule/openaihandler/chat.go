package openaihandler

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/chat"
)

// argumentsJSON passes OpenAI's string arguments to the template as a JSON
// string; the template layer parses it into an ordered mapping.
func argumentsJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// chatCompletions serves POST /v1/chat/completions; in is the decoded
// body when routing decoded it already.
func (h *OpenAI) chatCompletions(w http.ResponseWriter, r *http.Request, in *request) {
	h.serveGeneration(w, r, endpointChat, in, func(in *request) generation { return &chatGeneration{req: in.chat} })
}

// chatGeneration is a chat completion: the request, and what plan finds
// for respond.
type chatGeneration struct {
	req    *openai.ChatRequest
	lm     *inference.LoadedModel
	out    *outputPlan
	prompt []int32
	n      int
}

func (g *chatGeneration) model() string { return g.req.Model }

func (g *chatGeneration) check() *openai.Error {
	if f := unsupportedChatField(g.req); f != "" {
		return openai.InvalidRequest(f, "'"+f+"' is not supported by this server yet")
	}
	return nil
}

// plan renders the conversation with the model's chat template, with the
// tools and output format the request asks for.
func (g *chatGeneration) plan(h *OpenAI, r *http.Request, lm *inference.LoadedModel) (*job, int, int, *openai.Error) {
	if lm.Template == nil {
		return nil, 0, 0, openai.InvalidRequest("model", "the model '"+g.req.Model+"' has no chat template; use /v1/completions")
	}
	plan, e := planOutput(g.req, lm)
	if e != nil {
		return nil, 0, 0, e
	}
	rendered, err := lm.Template.Render(chat.Input{Messages: chatMessages(g.req.Messages), Tools: plan.tools, AddGenerationPrompt: true})
	if err != nil {
		var ex *chat.Exception
		if errors.As(err, &ex) {
			return nil, 0, 0, openai.InvalidRequest("messages", ex.Error())
		}
		return nil, 0, 0, openai.InvalidRequest("messages", "the chat template failed: "+err.Error())
	}
	prompt := encodeRendered(lm, rendered, g.req.Messages)
	requested, explicit := g.req.MaxOutputTokens()
	maxTokens, e := budget(lm, len(prompt), requested, explicit)
	if e != nil {
		return nil, 0, 0, e
	}
	topLogprobs := 0
	if g.req.TopLogprobs != nil {
		topLogprobs = *g.req.TopLogprobs
	}
	n := g.req.Choices()
	j := &job{lm: lm, stop: g.req.Stop, logger: h.logger, key: clientKey(r), noCache: g.req.UseCache != nil && !*g.req.UseCache}
	if plan.grammar != nil {
		j.constraint = func() inference.Constraint { return plan.constraint(lm) }
	}
	if plan.format == chat.ToolFormatMistral {
		// [TOOL_CALLS] is a control token in Mistral tokenizers: keep its
		// text so the reply can be parsed for calls.
		if id, ok := lm.Tokenizer.TokenID("[TOOL_CALLS]"); ok && lm.Tokenizer.IsSpecial(id) {
			j.keep = append(j.keep, id)
		}
	}
	for i := range n {
		p, e := samplingParams(g.req.Sampling, g.req.Logprobs, topLogprobs, lm.Meta.Vocab, i)
		if e != nil {
			return nil, 0, 0, e
		}
		j.prompts = append(j.prompts, prompt)
		j.maxTokens = append(j.maxTokens, maxTokens)
		j.params = append(j.params, p)
	}
	g.lm, g.out, g.prompt, g.n = lm, plan, prompt, n
	return j, len(prompt), len(prompt) + maxTokens*n, nil
}

// respond streams the chat completion or writes it whole.
func (g *chatGeneration) respond(h *OpenAI, w http.ResponseWriter, r *http.Request, j *job, events <-chan choiceEvent, acct *usage) {
	lm, plan, prompt, n := g.lm, g.out, g.prompt, g.n
	convID := g.req.ConversationID
	if convID == "" {
		convID = openai.NewConversationID()
	}
	if g.req.Stream {
		h.streamChat(w, r, g.req, lm, plan, j, events, len(prompt), n, convID, acct)
		return
	}
	resp := openai.ChatCompletion{ID: openai.NewChatID(), Created: openai.Created(), Model: g.req.Model, ConversationID: convID}
	texts := make([]strings.Builder, n)
	choices := make([]openai.ChatChoice, n)
	for ev := range events {
		c := &choices[ev.index]
		if ev.Err != nil {
			h.logger.Error("generation failed", zap.Error(ev.Err))
			openai.WriteError(w, engineError(ev.Err, g.req.Model))
			return
		}
		texts[ev.index].WriteString(ev.Text)
		if ev.HasToken {
			acct.token(ev.index)
			if g.req.Logprobs {
				if c.Logprobs == nil {
					c.Logprobs = &openai.ChoiceLogprobs{}
				}
				c.Logprobs.Content = append(c.Logprobs.Content, tokenLogprob(lm, ev.Event))
			}
		}
		if ev.Finish != "" {
			c.FinishReason = ev.Finish
		}
	}
	if err := r.Context().Err(); err != nil {
		return // the client left; nothing to write
	}
	for i := range choices {
		choices[i].Index = i
		// A reply cut by max_tokens keeps finish_reason "length", with any
		// call it was writing reported partial, as OpenAI does.
		truncated := choices[i].FinishReason == openai.FinishLength
		content, calls, err := plan.parse(texts[i].String(), truncated)
		if err != nil {
			h.logger.Info("reply looks like a tool call but does not parse; returned as content", zap.Error(err))
		}
		choices[i].Message = openai.ResponseMessage{Role: "assistant", Content: content, ToolCalls: calls}
		if len(calls) > 0 && !truncated {
			choices[i].FinishReason = openai.FinishToolCalls
		}
		if g.req.Logprobs && choices[i].Logprobs == nil {
			choices[i].Logprobs = &openai.ChoiceLogprobs{Content: []openai.TokenLogprob{}}
		}
	}
	resp.Choices = choices
	resp.Usage = j.usage(len(prompt), acct.completion)
	resp.PerformanceMetrics = acct.performance()
	openai.WriteJSON(w, http.StatusOK, resp)
}

// streamChat sends a chat completion as server-sent events: a role chunk
// per choice, one chunk per released piece of text, a final chunk with the
// finish reason, the usage chunk when asked for, then [DONE]. With tools,
// text that may begin a tool call is held back until it is known; calls go
// out as tool_calls deltas (Hermes calls as they are written, other
// formats when the reply ends; see chat.ToolStream).
func (h *OpenAI) streamChat(w http.ResponseWriter, r *http.Request, req *openai.ChatRequest, lm *inference.LoadedModel, plan *outputPlan, j *job, events <-chan choiceEvent, promptLen, n int, convID string, acct *usage) {
	sse := openai.NewSSE(w)
	cs := openai.ChatStream{ID: openai.NewChatID(), Created: openai.Created(), Model: req.Model, IncludeUsage: req.IncludeUsage()}
	for i := range n {
		if sse.Send(cs.Chunk(openai.ChunkChoice{Index: i, Delta: openai.RoleDelta()})) != nil {
			return
		}
	}
	// Per choice with tool parsing: the parse of the text so far.
	streams := make([]*chat.ToolStream, n)
	for i := range streams {
		streams[i] = plan.toolStream()
	}
	finished := 0
	for {
		ev, done, failed := h.nextStreamEvent(sse, events, req.Model, acct)
		if failed {
			return
		}
		if done {
			break
		}
		text, finish := ev.Text, ev.Finish
		var callDeltas []openai.ToolCallDelta
		if ts := streams[ev.index]; ts != nil {
			if finish == "" {
				var deltas []chat.CallDelta
				text, deltas = ts.Push(ev.Text)
				for _, d := range deltas {
					callDeltas = append(callDeltas, toolCallDelta(d))
				}
			} else {
				// Parsed as the unstreamed reply is, so both say the same:
				// cut by max_tokens, a call is partial and the reason stays
				// "length".
				truncated := finish == openai.FinishLength
				end := ts.Finish(ev.Text, truncated)
				if end.Err != nil {
					h.logger.Info("reply looks like a tool call but does not parse; returned as content", zap.Error(end.Err))
				}
				if end.Mismatch {
					h.logger.Warn("streamed tool call does not parse at the end of the reply; sent the rest as content")
				}
				text = end.Content
				for _, d := range end.Deltas {
					callDeltas = append(callDeltas, toolCallDelta(d))
				}
				if end.ToolCalls && !truncated {
					finish = openai.FinishToolCalls
				}
			}
		}
		choice := openai.ChunkChoice{Index: ev.index}
		if text != "" {
			choice.Delta = openai.TextDelta(text)
		}
		if req.Logprobs && ev.HasToken {
			choice.Logprobs = &openai.ChoiceLogprobs{Content: []openai.TokenLogprob{tokenLogprob(lm, ev.Event)}}
		}
		if text != "" || choice.Logprobs != nil {
			if sse.Send(cs.Chunk(choice)) != nil {
				return
			}
		}
		for _, d := range callDeltas {
			if sse.Send(cs.Chunk(openai.ChunkChoice{Index: ev.index, Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{d}}})) != nil {
				return
			}
		}
		if finish != "" {
			finished++
			last := cs.Chunk(openai.ChunkChoice{Index: ev.index, FinishReason: finish})
			if finished == n && !cs.IncludeUsage {
				seedExtras(&last, convID, acct)
			}
			if sse.Send(last) != nil {
				return
			}
		}
	}
	if r.Context().Err() != nil {
		return
	}
	if cs.IncludeUsage {
		last := cs.UsageChunk(j.usage(promptLen, acct.completion))
		seedExtras(&last, convID, acct)
		if sse.Send(last) != nil {
			return
		}
	}
	sse.Done()
}

// seedExtras puts the seed API's conversation_id and performance_metrics on
// a stream's last chunk, as the non-streamed response carries them.
func seedExtras(c *openai.ChatCompletionChunk, convID string, acct *usage) {
	c.ConversationID = convID
	c.PerformanceMetrics = acct.performance()
}

// encodeRendered tokenises a rendered chat prompt. Special-token text that a
// client typed inside message content stays plain text; only the template's
// own markup becomes control tokens. Each message's text is located in the
// rendered prompt in message order; a message the template rewrote (and so
// cannot be found verbatim) gets no protection beyond Hugging Face's default.
func encodeRendered(lm *inference.LoadedModel, rendered string, msgs []openai.Message) []int32 {
	var spans [][2]int
	pos := 0
	for i := range msgs {
		text := msgs[i].Text()
		if text == "" {
			continue
		}
		idx := strings.Index(rendered[pos:], text)
		if idx < 0 {
			continue
		}
		start := pos + idx
		spans = append(spans, [2]int{start, start + len(text)})
		pos = start + len(text)
	}
	if len(spans) == 0 {
		return lm.Tokenizer.EncodeWithSpecials(rendered)
	}
	return lm.Tokenizer.EncodeWithSpecialsWhere(rendered, func(start, end int) bool {
		for _, sp := range spans {
			if start < sp[1] && end > sp[0] {
				return false
			}
		}
		return true
	})
}
