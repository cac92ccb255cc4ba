package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain makes the tests' HTTP client retry a request that got no response
// at all because a config reload closed the connection under it, as the
// openai SDKs do (they retry connection errors twice by default). A reload
// swaps Caddy's listeners: a connection still waiting in the old socket's
// accept queue, or an idle keep-alive connection of the old server, is reset
// or closed before any byte of a response. Nothing ran for such a request, so
// sending it again loses and repeats nothing. A request that got a status
// line is never retried.
func TestMain(m *testing.M) {
	http.DefaultClient.Transport = retryTransport{base: http.DefaultTransport}
	os.Exit(m.Run())
}

// retryTransport resends a replayable request that failed before any response.
type retryTransport struct{ base http.RoundTripper }

func (rt retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	const attempts = 4
	for i := 1; ; i++ {
		resp, err := rt.base.RoundTrip(req)
		if err == nil || i == attempts || !droppedByReload(err) {
			return resp, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return resp, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		time.Sleep(time.Duration(i) * 20 * time.Millisecond)
	}
}

// CloseIdleConnections passes on http.Client.CloseIdleConnections, which
// tests call after a reload.
func (rt retryTransport) CloseIdleConnections() {
	if c, ok := rt.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// droppedByReload reports a connection that ended before any response.
func droppedByReload(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "server closed idle connection")
}

// TestRetryTransportReplaysBody checks that a retried POST sends its whole
// body again.
func TestRetryTransportReplaysBody(t *testing.T) {
	var bodies []string
	rt := retryTransport{base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if len(bodies) < 3 {
			return nil, syscall.ECONNRESET
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	req, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", strings.NewReader("payload"))
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("round trip: %v", err)
	}
	if len(bodies) != 3 || bodies[0] != "payload" || bodies[2] != "payload" {
		t.Fatalf("bodies sent: %q", bodies)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
