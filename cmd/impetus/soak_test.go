package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// rssKiB reads a process's resident memory from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestSoak sends 200 chat requests from 16 concurrent clients to a server
// with a deliberately small KV budget (1 MiB: about 340 tokens of the trained
// llama), so requests queue, are preempted and resumed, and the prefix cache
// evicts. Some streams are cancelled mid-way and some requests are too large
// for the budget. Every greedy reply must equal the one the same prompt got
// alone; every refusal must be a clear 400/429; resident memory must not
// creep between the first and the last part of the run.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	models := t.TempDir()
	copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(models, "llama"))
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, "key k secret", 10000)
	// Float activations keep the KV cache in float32, so the 1 MiB budget
	// holds fewer tokens than the 512-token context (half precision KV, the
	// int8 default, would fit a whole context in it).
	cfg = strings.Replace(cfg, "impetus {", "impetus {\n\t\tkv_cache_mb 1\n\t\tactivations float\n\t\tmax_sequences 8\n\t\tmax_queue 64", 1)
	cfg = strings.Replace(cfg, "requests 600", "requests 100000", 1)
	s := startServer(t, cfg)
	s.waitReady(base + "/api/health")
	url := base + "/v1/chat/completions"

	topics := []string{"the weather", "a river", "the old house", "bread", "winter mornings", "a cat"}
	body := func(topic string, maxTokens int, stream bool) string {
		return fmt.Sprintf(`{"model":"llama","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one sentence about %s."}],"temperature":0,"max_tokens":%d,"stream":%v}`, topic, maxTokens, stream)
	}
	reply := func(raw []byte) (string, bool) {
		var r struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if json.Unmarshal(raw, &r) != nil || len(r.Choices) != 1 {
			return "", false
		}
		return r.Choices[0].Message.Content, true
	}
	want := map[string]string{}
	for _, topic := range topics {
		code, raw := post(t, url, "secret", body(topic, 20, false))
		text, ok := reply(raw)
		if code != 200 || !ok {
			t.Fatalf("warm-up %q: %d %s", topic, code, raw)
		}
		want[topic] = text
	}

	client := &http.Client{Timeout: 60 * time.Second}
	send := func(ctx context.Context, b string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(b))
		req.Header.Set("Authorization", "Bearer secret")
		return client.Do(req)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	one := func(i int) {
		topic := topics[i%len(topics)]
		kind := "greedy"
		switch {
		case i%10 == 3:
			kind = "oversize"
		case i%10 == 7:
			kind = "cancel"
		case i%2 == 1:
			kind = "stream"
		}
		mu.Lock()
		counts[kind]++
		mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		maxTokens := 20
		if kind == "oversize" {
			maxTokens = 450 // fits the 512-token context, not the 1 MiB budget
		}
		resp, err := send(ctx, body(topic, maxTokens, kind == "stream" || kind == "cancel"))
		if err != nil {
			fail("request %d (%s): %v", i, kind, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == 429 {
			mu.Lock()
			counts["429"]++
			mu.Unlock()
			return
		}
		switch kind {
		case "oversize":
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(raw), "KV cache budget") {
				fail("oversize request %d: %d %s", i, resp.StatusCode, raw)
			}
		case "greedy":
			raw, _ := io.ReadAll(resp.Body)
			if text, ok := reply(raw); resp.StatusCode != 200 || !ok || text != want[topic] {
				fail("request %d: %d %s, want %q", i, resp.StatusCode, raw, want[topic])
			}
		case "stream", "cancel":
			if resp.StatusCode != 200 {
				raw, _ := io.ReadAll(resp.Body)
				fail("stream %d: %d %s", i, resp.StatusCode, raw)
				return
			}
			var text strings.Builder
			chunks := 0
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok || data == "[DONE]" {
					continue
				}
				chunks++
				if kind == "cancel" && chunks == 3 {
					cancel() // the client goes away mid-stream
					return
				}
				var c struct {
					Choices []struct {
						Delta struct{ Content string } `json:"delta"`
					} `json:"choices"`
				}
				if err := json.Unmarshal([]byte(data), &c); err != nil {
					fail("stream %d: bad chunk %s", i, data)
					return
				}
				for _, ch := range c.Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			if kind == "stream" && text.String() != want[topic] {
				fail("stream %d: %q, want %q", i, text.String(), want[topic])
			}
		}
	}
	const total, clients = 200, 16
	pid := s.cmd.Process.Pid
	var rssWarm int
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				one(i)
			}
		}()
	}
	for i := 0; i < total; i++ {
		if i == total/4 {
			rssWarm = rssKiB(t, pid)
		}
		next <- i
	}
	close(next)
	wg.Wait()
	rssEnd := rssKiB(t, pid)
	t.Logf("%d requests in %v: %v; RSS %d KiB after the first quarter, %d KiB at the end", total, time.Since(start).Round(time.Millisecond), counts, rssWarm, rssEnd)
	for _, f := range failures {
		t.Error(f)
	}
	if rssEnd > rssWarm+rssWarm/2+64<<10 {
		t.Errorf("resident memory grew from %d KiB to %d KiB", rssWarm, rssEnd)
	}
	// The server is still exact afterwards.
	code, raw := post(t, url, "secret", body(topics[0], 20, false))
	if text, ok := reply(raw); code != 200 || !ok || text != want[topics[0]] {
		t.Fatalf("after the soak: %d %s", code, raw)
	}
}
