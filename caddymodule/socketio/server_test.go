package socketio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type testClient struct {
	t   *testing.T
	url string
	sid string
}

func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	srv := NewServer(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return srv, ts
}

func (c *testClient) do(method, query, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+"/socket.io/?"+query, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *testClient) poll() string {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "EIO=4&transport=polling&sid="+c.sid, "")
	if code != http.StatusOK {
		c.t.Fatalf("poll: %d %s", code, body)
	}
	return body
}

func (c *testClient) post(body string) {
	c.t.Helper()
	code, resp := c.do(http.MethodPost, "EIO=4&transport=polling&sid="+c.sid, body)
	if code != http.StatusOK || resp != "ok" {
		c.t.Fatalf("post %q: %d %s", body, code, resp)
	}
}

// handshake opens a polling session and joins the main namespace.
func handshake(t *testing.T, url string) *testClient {
	t.Helper()
	c := &testClient{t: t, url: url}
	code, body := c.do(http.MethodGet, "EIO=4&transport=polling", "")
	if code != http.StatusOK || !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %d %s", code, body)
	}
	var open struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatalf("open packet: %v", err)
	}
	if open.SID == "" || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" || open.MaxPayload <= 0 {
		t.Fatalf("open packet: %+v", open)
	}
	c.sid = open.SID
	c.post("40")
	got := c.poll()
	if !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("connect reply: %s", got)
	}
	return c
}

func TestPollingSession(t *testing.T) {
	var mu sync.Mutex
	var events []string
	srv, ts := newTestServer(t, Options{
		OnConnect: func(s *Socket) { _ = s.Emit("hello", map[string]string{"id": s.ID}) },
		OnEvent: func(s *Socket, name string, args []json.RawMessage) {
			mu.Lock()
			events = append(events, name)
			mu.Unlock()
		},
	})
	c := &testClient{t: t, url: ts.URL}
	code, body := c.do(http.MethodGet, "EIO=4&transport=polling", "")
	if code != 200 {
		t.Fatalf("handshake %d", code)
	}
	var open struct{ SID string }
	_ = json.Unmarshal([]byte(body[1:]), &open)
	c.sid = open.SID
	if srv.Len() != 0 {
		t.Fatalf("Len before connect = %d", srv.Len())
	}
	c.post("40")
	got := strings.Split(c.poll(), recordSeparator)
	if len(got) != 2 || !strings.HasPrefix(got[0], `40{"sid":`) || !strings.HasPrefix(got[1], `42["hello",{"id":`) {
		t.Fatalf("after connect: %q", got)
	}
	if srv.Len() != 1 {
		t.Fatalf("Len = %d", srv.Len())
	}
	// Events with and without ack; the ack is answered.
	c.post("42[\"subscribe\",\"metrics\"]\x1e425[\"unsubscribe\"]")
	if got := c.poll(); got != "435[]" {
		t.Fatalf("ack: %q", got)
	}
	mu.Lock()
	if strings.Join(events, ",") != "subscribe,unsubscribe" {
		t.Fatalf("events: %v", events)
	}
	mu.Unlock()
	// A broadcast reaches the polling client, queued packets joined by \x1e.
	_ = srv.Emit("a", 1)
	_ = srv.Emit("b", []int{2})
	if got := c.poll(); got != "42[\"a\",1]\x1e42[\"b\",[2]]" {
		t.Fatalf("emit: %q", got)
	}
	// Another namespace is refused.
	c.post("40/admin,")
	if got := c.poll(); got != `44/admin,{"message":"Invalid namespace"}` {
		t.Fatalf("namespace: %q", got)
	}
	// Client close ends the session.
	c.post("1")
	if code, body := c.do(http.MethodGet, "EIO=4&transport=polling&sid="+c.sid, ""); code != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("after close: %d %s", code, body)
	}
}

func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxPayload: 16})
	c := &testClient{t: t, url: ts.URL}
	tests := []struct {
		method, query, body string
		code                int
		want                string
	}{
		{"GET", "EIO=3&transport=polling", "", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"GET", "EIO=4&transport=flash", "", 400, `{"code":0,"message":"Transport unknown"}`},
		{"GET", "EIO=4&transport=polling&sid=nope", "", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "EIO=4&transport=polling&sid=nope", "40", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "EIO=4&transport=polling", "40", 400, `{"code":2,"message":"Bad handshake method"}`},
	}
	for _, tt := range tests {
		code, body := c.do(tt.method, tt.query, tt.body)
		if code != tt.code || body != tt.want {
			t.Errorf("%s %s: %d %s", tt.method, tt.query, code, body)
		}
	}
	for _, body := range []string{"9x", "bAAAA", strings.Repeat("4", 17)} {
		c := handshake(t, ts.URL)
		code, resp := c.do("POST", "EIO=4&transport=polling&sid="+c.sid, body)
		if code < 400 || !strings.Contains(resp, `"code":3`) {
			t.Errorf("POST %q: %d %s", body, code, resp)
		}
		// A bad payload ends the session.
		if code, _ := c.do("GET", "EIO=4&transport=polling&sid="+c.sid, ""); code != 400 {
			t.Errorf("session survived bad payload %q", body)
		}
	}
}

func TestOverlappingPoll(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	c := handshake(t, ts.URL)
	done := make(chan string)
	go func() {
		_, body := c.do("GET", "EIO=4&transport=polling&sid="+c.sid, "")
		done <- body
	}()
	time.Sleep(100 * time.Millisecond)
	if code, _ := c.do("GET", "EIO=4&transport=polling&sid="+c.sid, ""); code != 400 {
		t.Fatalf("second poll: %d", code)
	}
	c.post("1") // closing answers the pending poll with a close packet
	if got := <-done; got != "1" {
		t.Fatalf("pending poll got %q", got)
	}
}

func TestHeartbeat(t *testing.T) {
	srv, ts := newTestServer(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	c := handshake(t, ts.URL)
	if got := c.poll(); got != "2" {
		t.Fatalf("expected ping, got %q", got)
	}
	c.post("3")
	if got := c.poll(); got != "2" {
		t.Fatalf("expected second ping, got %q", got)
	}
	// No pong: the session expires.
	deadline := time.Now().Add(2 * time.Second)
	for srv.lookup(c.sid) != nil {
		if time.Now().After(deadline) {
			t.Fatal("unresponsive session not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMaxSessions(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxSessions: 1})
	handshake(t, ts.URL)
	c := &testClient{t: t, url: ts.URL}
	if code, body := c.do("GET", "EIO=4&transport=polling", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "too many sessions") {
		t.Fatalf("over the cap: %d %s", code, body)
	}
}

func wsURL(ts *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?" + query
}

func readText(t *testing.T, ctx context.Context, conn *websocket.Conn) string {
	t.Helper()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("ws read: %v", err)
	}
	return string(b)
}

func TestUpgrade(t *testing.T) {
	srv, ts := newTestServer(t, Options{})
	c := handshake(t, ts.URL)
	// A poll is pending while the probe runs; the upgrade releases it with a noop.
	pending := make(chan string)
	go func() {
		_, body := c.do("GET", "EIO=4&transport=polling&sid="+c.sid, "")
		pending <- body
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(ts, "EIO=4&transport=websocket&sid="+c.sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, conn); got != "3probe" {
		t.Fatalf("probe reply %q", got)
	}
	if got := <-pending; got != "6" {
		t.Fatalf("pending poll got %q, want noop", got)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("5")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_ = srv.Emit("after", "upgrade")
	if got := readText(t, ctx, conn); got != `42["after","upgrade"]` {
		t.Fatalf("after upgrade: %q", got)
	}
	// Polling is over for this session.
	if code, _ := c.do("GET", "EIO=4&transport=polling&sid="+c.sid, ""); code != 400 {
		t.Fatalf("poll after upgrade: %d", code)
	}
	// Closing the server sends 1001.
	srv.Close()
	_, _, err = conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("close status: %v", err)
	}
}

func TestBadProbe(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	c := handshake(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(ts, "EIO=4&transport=websocket&sid="+c.sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	_ = conn.Write(ctx, websocket.MessageText, []byte("2nope"))
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("bad probe: %v", err)
	}
	// The session stays on polling.
	c.post("42[\"x\"]")
}

func TestDirectWebSocket(t *testing.T) {
	srv, ts := newTestServer(t, Options{OnConnect: func(s *Socket) { _ = s.Emit("snap", 1) }})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(ts, "EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	open := readText(t, ctx, conn)
	if !strings.HasPrefix(open, `0{"maxPayload":1000000,"pingInterval":25000,"pingTimeout":20000,"sid":"`) || !strings.HasSuffix(open, `"upgrades":[]}`) {
		t.Fatalf("open: %s", open)
	}
	_ = conn.Write(ctx, websocket.MessageText, []byte("40"))
	if got := readText(t, ctx, conn); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("connect: %s", got)
	}
	if got := readText(t, ctx, conn); got != `42["snap",1]` {
		t.Fatalf("snapshot: %s", got)
	}
	if srv.Len() != 1 {
		t.Fatalf("Len = %d", srv.Len())
	}
	conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(2 * time.Second)
	for srv.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("closed websocket still counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestQueueOverflowClosesSession(t *testing.T) {
	srv, ts := newTestServer(t, Options{})
	c := handshake(t, ts.URL)
	for i := 0; i <= maxQueued; i++ {
		_ = srv.Emit("e", i)
	}
	if srv.lookup(c.sid) != nil {
		t.Fatal("a client that never polls kept its session past the queue cap")
	}
}
