package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// backendConfig is an Impetus node that tags its responses with X-Backend.
func backendConfig(admin string, port int, models, name string) string {
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	grace_period 10s
	impetus {
		models_dir %s
	}
}

http://127.0.0.1:%d {
	header X-Backend %s
	@protected not path /api/health /api/health/*
	impetus_auth @protected {
		key front backend-key
	}
	impetus_openai
	impetus_api
	handle_errors {
		impetus_error
	}
}
`, admin, models, port, name)
}

// TestRoutingThroughFront starts two back ends serving different fixture
// models (and one shared model) and a front node routing by model.
func TestRoutingThroughFront(t *testing.T) {
	fixture := func(name string) string { return testutil.Fixture(t, "dev-trained", name) }
	modelsA, modelsB := t.TempDir(), t.TempDir()
	copyDir(t, fixture("llama-mlx4"), filepath.Join(modelsA, "llama-mlx4"))
	copyDir(t, fixture("llama-bfloat16"), filepath.Join(modelsA, "llama-bfloat16"))
	copyDir(t, fixture("llama-mlx8"), filepath.Join(modelsB, "llama-mlx8"))
	copyDir(t, fixture("llama-bfloat16"), filepath.Join(modelsB, "llama-bfloat16"))

	var ports [3]int
	var admins [3]string
	for i := range ports {
		ports[i] = freePort(t)
		admins[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	urlOf := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[i]) }
	a := startServer(t, backendConfig(admins[0], ports[0], modelsA, "A"))
	b := startServer(t, backendConfig(admins[1], ports[1], modelsB, "B"))
	a.waitReady(urlOf(0) + "/api/health")
	b.waitReady(urlOf(1) + "/api/health")
	front := fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	impetus {
		models_dir %s
		route llama-mlx4 {
			to %s
			upstream_key {env.BACKEND_KEY}
			health_interval 1s
		}
		route llama-mlx8 {
			to %s
			upstream_key {env.BACKEND_KEY}
			health_interval 1s
		}
		route llama-bfloat16 {
			to %s %s
			upstream_key {env.BACKEND_KEY}
			health_interval 1s
		}
	}
}

http://127.0.0.1:%d {
	impetus_auth {
		key main front-key
		key small small-key
		key tokens tokens-key
	}
	impetus_ratelimit {
		key {http.auth.user.id}
		requests 1000
		burst 1000
		key_limit small requests 2 burst 2
		key_limit tokens tokens_per_minute 30
	}
	impetus_openai
	impetus_api
	handle_errors {
		impetus_error
	}
}
`, admins[2], t.TempDir(), urlOf(0), urlOf(1), urlOf(0), urlOf(1), ports[2])
	f := startServer(t, front, "BACKEND_KEY=backend-key")
	f.waitReady(urlOf(2) + "/api/health")

	chat := func(base, key, model, conv string, stream bool) (int, string, string) {
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Write one sentence about the weather."}],"temperature":0,"max_tokens":12,"stream":%v,"conversation_id":%q}`, model, stream, conv)
		req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		text := string(raw)
		if stream {
			var sb strings.Builder
			for _, line := range strings.Split(text, "\n") {
				var c struct {
					Choices []struct {
						Delta struct{ Content string } `json:"delta"`
					} `json:"choices"`
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) > 0 {
					sb.WriteString(c.Choices[0].Delta.Content)
				}
			}
			if !strings.Contains(text, "data: [DONE]") {
				return resp.StatusCode, resp.Header.Get("X-Backend"), "no [DONE]: " + text
			}
			text = sb.String()
		} else {
			var r struct {
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			if json.Unmarshal(raw, &r) == nil && len(r.Choices) > 0 {
				text = r.Choices[0].Message.Content
			}
		}
		return resp.StatusCode, resp.Header.Get("X-Backend"), text
	}

	t.Run("merged model list", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := do(t, "GET", urlOf(2)+"/v1/models", "front-key")
			var ids []string
			for _, m := range r.body["data"].([]any) {
				ids = append(ids, m.(map[string]any)["id"].(string))
			}
			if strings.Join(ids, ",") == "llama-bfloat16,llama-mlx4,llama-mlx8" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("front lists %v", ids)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if r := do(t, "GET", urlOf(2)+"/v1/models/llama-mlx8", "front-key"); r.status != 200 || r.body["id"] != "llama-mlx8" {
			t.Fatalf("routed model by id: %d %v", r.status, r.body)
		}
	})

	t.Run("routing by model and streaming equals direct", func(t *testing.T) {
		for model, want := range map[string]string{"llama-mlx4": "A", "llama-mlx8": "B"} {
			code, backend, text := chat(urlOf(2), "front-key", model, "", false)
			if code != 200 || backend != want {
				t.Fatalf("%s: %d via %q: %s", model, code, backend, text)
			}
			direct := 0
			if want == "B" {
				direct = 1
			}
			_, _, viaFront := chat(urlOf(2), "front-key", model, "", true)
			_, _, straight := chat(urlOf(direct), "backend-key", model, "", true)
			if viaFront != straight || viaFront != text {
				t.Fatalf("%s: front stream %q, direct stream %q, non-stream %q", model, viaFront, straight, text)
			}
		}
		// The client's key never reaches a back end: the front's upstream key does.
		if code, _, _ := chat(urlOf(0), "front-key", "llama-mlx4", "", false); code != 401 {
			t.Fatalf("the front key works on a back end directly: %d", code)
		}
	})

	t.Run("affinity by conversation_id", func(t *testing.T) {
		for _, conv := range []string{"conv-1", "conv-2", "conv-3"} {
			_, first, _ := chat(urlOf(2), "front-key", "llama-bfloat16", conv, false)
			for i := 0; i < 3; i++ {
				if code, got, text := chat(urlOf(2), "front-key", "llama-bfloat16", conv, false); code != 200 || got != first {
					t.Fatalf("%s: turn %d went to %q (%d %s), first to %q", conv, i, got, code, text, first)
				}
			}
		}
	})

	t.Run("per-key limits at the front", func(t *testing.T) {
		codes := []int{}
		for i := 0; i < 3; i++ {
			code, _, _ := chat(urlOf(2), "small-key", "llama-mlx4", "", false)
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[200 200 429]" {
			t.Fatalf("small key got %v", codes)
		}
		// Upstream usage feeds the key's token budget at the front: one
		// request (about 20 prompt + 12 completion tokens) spends 30.
		codes = codes[:0]
		for i := 0; i < 2; i++ {
			code, _, _ := chat(urlOf(2), "tokens-key", "llama-mlx4", "", false)
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[200 429]" {
			t.Fatalf("token-budget key got %v", codes)
		}
		// And the front's metrics count the upstream's tokens.
		req, _ := http.NewRequest("GET", urlOf(2)+"/api/metrics", nil)
		req.Header.Set("Authorization", "Bearer front-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(raw), `impetus_completion_tokens_total{key_id="tokens",model="llama-mlx4"} 12`) {
			t.Fatalf("front metrics lack the upstream usage:\n%s", grepLines(string(raw), "completion_tokens"))
		}
	})

	t.Run("failover when a back end stops", func(t *testing.T) {
		var failed, ok atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					code, _, text := chat(urlOf(2), "front-key", "llama-bfloat16", fmt.Sprintf("w%d-%d", w, i), i%2 == 0)
					if code != 200 {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, text))
					} else {
						ok.Add(1)
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		a.cmd.Process.Signal(os.Interrupt) // graceful: in-flight requests finish
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		if failed.Load() != 0 || ok.Load() < 6 {
			t.Fatalf("%d requests failed (first: %v), %d succeeded", failed.Load(), firstErr.Load(), ok.Load())
		}
		if code, backend, _ := chat(urlOf(2), "front-key", "llama-bfloat16", "after", false); code != 200 || backend != "B" {
			t.Fatalf("after stopping A: %d via %q", code, backend)
		}
		t.Logf("%d requests succeeded while back end A stopped", ok.Load())
	})
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
