package models

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/shirou/gopsutil/v4/process"
)

// benchPrompts are the benchmark's prompts, cycled over the samples.
var benchPrompts = []string{
	"Write a short story about a lighthouse keeper.",
	"Explain how a refrigerator works.",
	"List five uses for a paperclip.",
	"Write a Python function that reverses a string.",
}

// sampleResult is one timed generation.
type sampleResult struct {
	Prompt              string  `json:"prompt"`
	PromptTokens        int     `json:"prompt_tokens"`
	Tokens              int     `json:"tokens"`
	TimeSeconds         float64 `json:"time_seconds"`
	TokensPerSecond     float64 `json:"tokens_per_second"`
	FirstTokenLatencyMS float64 `json:"first_token_latency_ms"`
	FinishReason        string  `json:"finish_reason"`
}

// timedGenerate runs one generation and times its first token and whole.
func timedGenerate(ctx context.Context, lm *inference.LoadedModel, prompt string, maxTokens int, temperature float32) (sampleResult, error) {
	ids := lm.Tokenizer.Encode(prompt, true)
	res := sampleResult{Prompt: prompt, PromptTokens: len(ids)}
	room := lm.Meta.ContextLength - len(ids)
	if room < 1 {
		return res, fmt.Errorf("prompt of %d tokens does not fit the %d-token context", len(ids), lm.Meta.ContextLength)
	}
	maxTokens = min(maxTokens, room)
	p := sample.DefaultParams()
	p.Temperature = temperature
	start := time.Now()
	ch, err := lm.Generate(ctx, inference.GenerateRequest{Prompt: ids, MaxTokens: maxTokens, Sampling: p})
	if err != nil {
		return res, err
	}
	var first time.Duration
	for ev := range ch {
		if ev.Err != nil {
			return res, ev.Err
		}
		if ev.HasToken {
			if res.Tokens == 0 {
				first = time.Since(start)
			}
			res.Tokens++
		}
		if ev.Finish != "" {
			res.FinishReason = ev.Finish
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	el := time.Since(start)
	res.TimeSeconds = httperr.RoundTo(el.Seconds(), 4)
	res.FirstTokenLatencyMS = httperr.RoundTo(float64(first.Microseconds())/1000, 3)
	if el > 0 {
		res.TokensPerSecond = httperr.RoundTo(float64(res.Tokens)/el.Seconds(), 2)
	}
	return res, nil
}

func processRSS() (uint64, error) {
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return 0, err
	}
	mi, err := p.MemoryInfo()
	if err != nil {
		return 0, err
	}
	return mi.RSS, nil
}

// benchmarkRecord is a benchmark result as returned and kept in history.
type benchmarkRecord struct {
	ModelID               string         `json:"model_id"`
	Timestamp             string         `json:"timestamp"`
	TokensPerSecond       float64        `json:"tokens_per_second"`
	FirstTokenLatencyMS   float64        `json:"first_token_latency_ms"`
	TotalTokens           int            `json:"total_tokens"`
	TotalTimeSeconds      float64        `json:"total_time_seconds"`
	MemoryUsageMB         *float64       `json:"memory_usage_mb"`
	MemoryDeltaMB         *float64       `json:"memory_delta_mb,omitempty"`
	GPUUtilizationPercent *float64       `json:"gpu_utilization_percent"`
	WarmupTimeMS          *float64       `json:"warmup_time_ms,omitempty"`
	NumSamples            int            `json:"num_samples"`
	MaxTokens             int            `json:"max_tokens"`
	Temperature           float64        `json:"temperature"`
	Threads               int            `json:"threads"`
	Samples               []sampleResult `json:"samples"`
}

func (m *Manager) benchmark(w http.ResponseWriter, r *http.Request, id string) {
	req := struct {
		NumSamples        int      `json:"num_samples"`
		MaxTokens         int      `json:"max_tokens"`
		Temperature       *float64 `json:"temperature"`
		IncludeMemoryTest *bool    `json:"include_memory_test"`
		IncludeWarmup     *bool    `json:"include_warmup"`
	}{NumSamples: 10, MaxTokens: 100}
	if !decodeBody(w, r, &req) {
		return
	}
	temp := 0.7
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	var bad []string
	if req.NumSamples < 1 || req.NumSamples > 100 {
		bad = append(bad, "num_samples: must be within 1..100")
	}
	if req.MaxTokens < 1 || req.MaxTokens > 4096 {
		bad = append(bad, "max_tokens: must be within 1..4096")
	}
	if temp < 0 || temp > 2 || math.IsNaN(temp) {
		bad = append(bad, "temperature: must be within 0..2")
	}
	if len(bad) > 0 {
		httperr.WriteAPI(w, http.StatusBadRequest, "Invalid request data", bad...)
		return
	}
	memTest := req.IncludeMemoryTest == nil || *req.IncludeMemoryTest
	warm := req.IncludeWarmup == nil || *req.IncludeWarmup
	lm, _, err := m.LoadChecked(r.Context(), id)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	rec := benchmarkRecord{ModelID: id, NumSamples: req.NumSamples, MaxTokens: req.MaxTokens, Temperature: temp, Threads: m.engine.Options().Threads, Samples: []sampleResult{}}
	var rssBefore uint64
	if memTest {
		rssBefore, _ = processRSS()
	}
	if warm {
		start := time.Now()
		if _, err := timedGenerate(r.Context(), lm, "Hello", 4, 0); err != nil {
			writeModelsError(w, http.StatusInternalServerError, "benchmark warmup failed: "+err.Error())
			return
		}
		ms := httperr.RoundTo(float64(time.Since(start).Microseconds())/1000, 3)
		rec.WarmupTimeMS = &ms
	}
	var ttft, total float64
	for i := range req.NumSamples {
		s, err := timedGenerate(r.Context(), lm, benchPrompts[i%len(benchPrompts)], req.MaxTokens, float32(temp))
		if err != nil {
			writeModelsError(w, http.StatusInternalServerError, fmt.Sprintf("benchmark sample %d failed: %v", i+1, err))
			return
		}
		rec.Samples = append(rec.Samples, s)
		rec.TotalTokens += s.Tokens
		total += s.TimeSeconds
		ttft += s.FirstTokenLatencyMS
	}
	rec.TotalTimeSeconds = httperr.RoundTo(total, 4)
	if total > 0 {
		rec.TokensPerSecond = httperr.RoundTo(float64(rec.TotalTokens)/total, 2)
	}
	rec.FirstTokenLatencyMS = httperr.RoundTo(ttft/float64(len(rec.Samples)), 3)
	if memTest {
		if after, err := processRSS(); err == nil {
			mb := httperr.RoundTo(float64(after)/mib, 1)
			delta := httperr.RoundTo((float64(after)-float64(rssBefore))/mib, 1)
			rec.MemoryUsageMB, rec.MemoryDeltaMB = &mb, &delta
		}
	}
	rec.Timestamp = httperr.ISONow()
	if err := appendHistory(rec); err != nil {
		writeModelsError(w, http.StatusInternalServerError, "benchmark ran but its history could not be saved: "+err.Error())
		return
	}
	httperr.WriteJSON(w, http.StatusOK, rec)
}

// historyPath is where benchmark results are kept, one JSON object a line.
func historyPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "impetus", "benchmarks.jsonl"), nil
}

var historyMu sync.Mutex

func appendHistory(rec benchmarkRecord) error {
	p, err := historyPath()
	if err != nil {
		return err
	}
	historyMu.Lock()
	defer historyMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maxHistory bounds how many past results one answer returns.
const maxHistory = 100

func (m *Manager) benchmarkHistory(w http.ResponseWriter, id string) {
	out := []benchmarkRecord{}
	p, err := historyPath()
	if err == nil {
		historyMu.Lock()
		data, rerr := os.ReadFile(p)
		historyMu.Unlock()
		if rerr == nil {
			for _, line := range strings.Split(string(data), "\n") {
				var rec benchmarkRecord
				if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.ModelID != id {
					continue
				}
				out = append(out, rec)
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > maxHistory {
		out = out[:maxHistory]
	}
	if len(out) == 0 && !m.exists(id) {
		httperr.WriteAPI(w, http.StatusNotFound, "model not found and no benchmark history: "+id)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"model_id": id, "results": out, "total": len(out)})
}
