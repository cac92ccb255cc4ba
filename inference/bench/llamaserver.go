package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	ggufpkg "github.com/impetusllm/impetus/inference/gguf"
)

// llamaServer is a llama-server process on a loopback port.
type llamaServer struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncWriter
	vocab  int
	banned [][2]any // logit_bias entries forbidding tokens that are not text
	done   chan struct{}
}

// serverStartTimeout bounds how long llama-server may take to load a model.
const serverStartTimeout = 3 * time.Minute

// launchLlamaServer starts llama-server with args on a free loopback port
// and waits until /health answers 200.
func launchLlamaServer(bin string, env []string, args ...string) (*llamaServer, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("llama-server: %w", err)
	}
	args = append(args, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	s := &llamaServer{cmd: exec.Command(bin, args...), url: "http://127.0.0.1:" + strconv.Itoa(port),
		stderr: &syncWriter{w: &bytes.Buffer{}}, done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("llama-server: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(serverStartTimeout)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("llama-server %v exited: %s", args, lastLines(s.stderr.String(), 5))
		default:
		}
		if resp, err := http.Get(s.url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("llama-server did not become ready in %v: %s", serverStartTimeout, lastLines(s.stderr.String(), 5))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startLlamaServer starts llama-server on gguf with threads threads (for
// single tokens and batches alike) and slots parallel sequences of up to
// decodeLen tokens after a short prompt, and waits until /health answers 200.
func startLlamaServer(bin string, env []string, gguf string, threads, slots, decodeLen int) (*llamaServer, error) {
	perSlot := max(256, decodeLen+64)
	s, err := launchLlamaServer(bin, env, "-m", gguf,
		"-t", strconv.Itoa(threads), "-tb", strconv.Itoa(threads), "-np", strconv.Itoa(slots),
		"-c", strconv.Itoa(slots*perSlot))
	if err != nil {
		return nil, err
	}
	var props struct {
		Vocab int `json:"n_vocab"`
	}
	s.vocab = 1000
	if resp, err := http.Get(s.url + "/props"); err == nil {
		json.NewDecoder(resp.Body).Decode(&props)
		resp.Body.Close()
	}
	if props.Vocab > 0 {
		s.vocab = props.Vocab
	}
	if f, err := ggufpkg.Open(gguf); err == nil {
		tokens, _ := f.Strings("tokenizer.ggml.tokens")
		types, _ := f.Int32s("tokenizer.ggml.token_type")
		if model, _ := f.String("tokenizer.ggml.model"); model == "gpt2" {
			for _, id := range bannedTokens(tokens, types) {
				s.banned = append(s.banned, [2]any{id, false})
			}
		}
		f.Close()
	}
	return s, nil
}

func (s *llamaServer) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// completion is the part of llama-server's /completion answer a round reads.
type completion struct {
	Timings struct {
		PredictedN int `json:"predicted_n"`
	} `json:"timings"`
	Tokens int `json:"tokens_predicted"`
}

// round sends streams concurrent /completion requests of n tokens each (a
// four-token random prompt, end of text ignored, greedy, the tokens that
// are not valid text forbidden: the server refuses to return such output) and returns the generated
// tokens per second of wall time over all of them.
func (s *llamaServer) round(streams, n int) (float64, error) {
	var wg sync.WaitGroup
	counts := make([]int, streams)
	errs := make([]error, streams)
	start := time.Now()
	for i := 0; i < streams; i++ {
		prompt := make([]int, 4)
		for j := range prompt {
			prompt[j] = rand.IntN(min(s.vocab, 65536))
		}
		req := map[string]any{"prompt": prompt, "n_predict": n, "ignore_eos": true,
			"cache_prompt": false, "temperature": 0}
		if len(s.banned) > 0 {
			req["logit_bias"] = s.banned
		}
		body, _ := json.Marshal(req)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(s.url+"/completion", "application/json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<24))
			if err != nil {
				errs[i] = err
				return
			}
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
				return
			}
			var c completion
			if err := json.Unmarshal(data, &c); err != nil {
				errs[i] = fmt.Errorf("answer: %w", err)
				return
			}
			counts[i] = max(c.Timings.PredictedN, c.Tokens)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("llama-server /completion: %w", err)
	}
	total := 0
	for _, c := range counts {
		if c != n {
			return 0, fmt.Errorf("llama-server /completion: generated %d tokens, want %d", c, n)
		}
		total += c
	}
	return float64(total) / elapsed, nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncWriter serialises writes from the process's output copier with reads
// of the buffer for error messages.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Len() > 1<<20 {
		s.w.Reset()
	}
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
