package inference

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/cuda"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/testutil"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]deviceChoice{
		"": {auto: true}, "auto": {auto: true}, " AUTO ": {auto: true}, "cpu": {},
		"cuda": {cuda: true}, "cuda:0": {cuda: true}, "cuda:3": {cuda: true, ordinal: 3},
	} {
		got, err := parseDevice(in)
		if err != nil || got != want {
			t.Errorf("parseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"gpu", "cuda:", "cuda:-1", "cuda:x", "metal"} {
		if _, err := parseDevice(bad); err == nil {
			t.Errorf("parseDevice(%q) accepted", bad)
		}
		if _, err := New(Options{ModelsDir: t.TempDir(), Device: bad}); err == nil || !strings.Contains(err.Error(), "device") {
			t.Errorf("New with device %q: %v, want a device error", bad, err)
		}
	}
}

// trainedChat is the trained llama fixture's chat prompt and the reply
// transformers decodes greedily.
func trainedChat(t *testing.T) (dir string, prompt, reply []int32) {
	t.Helper()
	dir = testutil.Fixture(t, "dev-trained", "llama-bfloat16")
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Chat struct {
			PromptIDs []int32 `json:"prompt_ids"`
			ReplyIDs  []int32 `json:"reply_ids"`
		} `json:"chat"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return dir, ref.Chat.PromptIDs, ref.Chat.ReplyIDs
}

// greedyOn loads the trained llama fixture on device and decodes n greedy
// tokens of its chat prompt.
func greedyOn(t *testing.T, device string, n int) ([]int32, *LoadedModel, error) {
	t.Helper()
	modelDir, prompt, _ := trainedChat(t)
	dir := filepath.Dir(modelDir)
	var logged []string
	e, err := New(Options{ModelsDir: dir, Threads: 1, Device: device, Logf: func(f string, a ...any) {
		logged = append(logged, f)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := e.Load(ctx, filepath.Base(modelDir))
	if err != nil {
		return nil, nil, err
	}
	if len(logged) != 1 {
		t.Errorf("%d log lines for one load, want 1", len(logged))
	}
	params := sample.DefaultParams()
	params.Temperature = 0
	events, err := m.Generate(ctx, GenerateRequest{Prompt: prompt, MaxTokens: n, Sampling: params})
	if err != nil {
		t.Fatal(err)
	}
	var toks []int32
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if ev.Finish != "" {
			break
		}
		toks = append(toks, ev.Token)
	}
	// GPUs reports the opened GPU with the model's memory on it.
	gs := e.GPUs()
	if strings.HasPrefix(m.Device, "cuda:") {
		if len(gs) != 1 || !slices.Equal(gs[0].Models, []string{m.Info.ID}) || gs[0].WeightsBytes <= 0 || gs[0].KVBytes <= 0 ||
			gs[0].ActivationBytes <= 0 || gs[0].FreeBytes == nil || gs[0].TotalBytes == 0 || gs[0].ComputeCapability == "" {
			t.Errorf("GPUs() = %+v", gs)
		} else {
			t.Logf("GPUs(): %+v (free %d)", gs[0], *gs[0].FreeBytes)
		}
	} else if len(gs) > 0 && len(gs[0].Models) > 0 {
		t.Errorf("model on %s, GPUs() = %+v", m.Device, gs)
	}
	return toks, m, nil
}

func TestEngineDeviceCPU(t *testing.T) {
	toks, m, err := greedyOn(t, "cpu", 4)
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "cpu" || m.DeviceReason == "" || len(toks) == 0 {
		t.Errorf("device %q (%q), %d tokens", m.Device, m.DeviceReason, len(toks))
	}
}

// TestEngineOnGPU serves the same model on the GPU (device cuda and auto)
// and on the CPU: the greedy tokens must agree. Without a GPU, cuda fails
// the load with a clear error and auto falls back to the CPU.
func TestEngineOnGPU(t *testing.T) {
	if _, err := cuda.Count(); err != nil {
		_, _, lerr := greedyOn(t, "cuda", 4)
		if lerr == nil || !errors.Is(lerr, cuda.ErrNotAvailable) {
			t.Errorf("device cuda without a GPU: %v, want ErrNotAvailable", lerr)
		}
		_, m, aerr := greedyOn(t, "auto", 4)
		if aerr != nil || m.Device != "cpu" || !strings.Contains(m.DeviceReason, "no usable NVIDIA GPU") {
			t.Errorf("device auto without a GPU: %v, on %q (%q)", aerr, m.Device, m.DeviceReason)
		}
		t.Skipf("no GPU (%v): checked the fallbacks only", err)
	}
	_, _, reply := trainedChat(t)
	want, _, err := greedyOn(t, "cpu", len(reply))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, reply[:len(want)]) {
		t.Fatalf("CPU reply %v, transformers %v", want, reply)
	}
	for _, dev := range []string{"cuda", "auto"} {
		got, m, err := greedyOn(t, dev, len(reply))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("device %s: model on %s (%s)", dev, m.Device, m.DeviceReason)
		if !strings.HasPrefix(m.Device, "cuda:0") {
			t.Errorf("device %s: model on %q", dev, m.Device)
		}
		if len(got) != len(want) {
			t.Fatalf("device %s: %v, CPU %v", dev, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("device %s: greedy tokens %v, CPU %v", dev, got, want)
			}
		}
	}
}
