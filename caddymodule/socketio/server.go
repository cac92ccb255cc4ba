package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Options tune a Server. Zero fields take the socket.io defaults.
type Options struct {
	PingInterval time.Duration // default 25 s
	PingTimeout  time.Duration // default 20 s
	MaxPayload   int           // bytes per polling POST or WebSocket message; default 1,000,000
	MaxSessions  int           // default 1000

	// OnConnect runs when a client joins the main namespace; use it to send
	// a first state snapshot. It must not block.
	OnConnect func(*Socket)
	// OnEvent runs for each event a client sends. It must not block.
	OnEvent func(s *Socket, name string, args []json.RawMessage)
	// Authorize, when set, decides whether a client may join the main
	// namespace. It gets the HTTP request that carried the CONNECT packet
	// and the packet's auth payload (the client's `auth` option; empty when
	// none). An error refuses the connection with a CONNECT_ERROR whose
	// message is the error's text, so the text must never hold a secret. The
	// value returned is kept as the socket's Identity.
	Authorize func(r *http.Request, auth json.RawMessage) (any, error)
	// Logf reports protocol errors; nil discards them.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1_000_000
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1000
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Server keeps Engine.IO sessions in memory and broadcasts events to the
// sockets connected to the main namespace.
type Server struct {
	opts Options

	mu       sync.Mutex
	sessions map[string]*Socket
	closed   bool
}

// NewServer returns a server with the given options.
func NewServer(opts Options) *Server {
	return &Server{opts: opts.withDefaults(), sessions: make(map[string]*Socket)}
}

// Engine.IO error codes, as the socket.io server reports them.
const (
	errTransportUnknown = 0
	errSessionUnknown   = 1
	errBadMethod        = 2
	errBadRequest       = 3
	errForbidden        = 4
	errUnsupportedProto = 5
)

var errMessages = map[int]string{
	errTransportUnknown: "Transport unknown",
	errSessionUnknown:   "Session ID unknown",
	errBadMethod:        "Bad handshake method",
	errBadRequest:       "Bad request",
	errForbidden:        "Forbidden",
	errUnsupportedProto: "Unsupported protocol version",
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	if message == "" {
		message = errMessages[code]
	}
	body, _ := json.Marshal(map[string]any{"code": code, "message": message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ServeHTTP answers one Engine.IO request (polling GET/POST or a WebSocket).
// The caller routes the /socket.io/ path to it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		writeError(w, http.StatusBadRequest, errUnsupportedProto, "")
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, http.StatusBadRequest, errTransportUnknown, "")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if transport == "polling" && r.Method != http.MethodGet {
			writeError(w, http.StatusBadRequest, errBadMethod, "")
			return
		}
		sock, err := s.newSession(transport)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, errForbidden, err.Error())
			return
		}
		if transport == "polling" {
			w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
			_, _ = io.WriteString(w, sock.openPacket())
			return
		}
		s.serveWebSocket(w, r, sock, false)
		return
	}
	sock := s.lookup(sid)
	if sock == nil {
		writeError(w, http.StatusBadRequest, errSessionUnknown, "")
		return
	}
	if transport == "websocket" {
		if !sock.beginUpgrade() {
			writeError(w, http.StatusBadRequest, errBadRequest, "session is not polling")
			return
		}
		s.serveWebSocket(w, r, sock, true)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.poll(w, r, sock)
	case http.MethodPost:
		s.receive(w, r, sock)
	default:
		writeError(w, http.StatusBadRequest, errBadMethod, "")
	}
}

// Len returns how many sockets are connected to the main namespace.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sock := range s.sessions {
		if sock.isConnected() {
			n++
		}
	}
	return n
}

// Emit sends an event to every socket connected to the main namespace.
func (s *Server) Emit(name string, payload any) error {
	return s.emit(name, payload, func(*Socket) bool { return true })
}

// EmitRoom sends an event to the connected sockets that joined room, and to
// those that have joined no room at all: a client that never subscribes
// hears everything, one that subscribes hears only its rooms.
func (s *Server) EmitRoom(room, name string, payload any) error {
	return s.emit(name, payload, func(sock *Socket) bool { return sock.listensLocked(room) })
}

// EmitEach sends an event to the sockets listening to room (as EmitRoom
// does) with a payload chosen per socket: payloadFor returns the payload for
// that socket, or false to skip it. Use it for events whose content depends
// on who is listening. payloadFor runs without the socket's lock held.
func (s *Server) EmitEach(room, name string, payloadFor func(*Socket) (any, bool)) error {
	s.mu.Lock()
	socks := make([]*Socket, 0, len(s.sessions))
	for _, sock := range s.sessions {
		socks = append(socks, sock)
	}
	s.mu.Unlock()
	for _, sock := range socks {
		payload, ok := payloadFor(sock)
		if !ok {
			continue
		}
		msg, err := EncodeEvent(name, payload)
		if err != nil {
			return err
		}
		sock.sendIf(msg, func() bool { return sock.connected && sock.listensLocked(room) })
	}
	return nil
}

// emit queues the event on each connected socket for which to, called with
// that socket's lock held, is true.
func (s *Server) emit(name string, payload any, to func(*Socket) bool) error {
	msg, err := EncodeEvent(name, payload)
	if err != nil {
		return err
	}
	s.mu.Lock()
	socks := make([]*Socket, 0, len(s.sessions))
	for _, sock := range s.sessions {
		socks = append(socks, sock)
	}
	s.mu.Unlock()
	for _, sock := range socks {
		sock.sendIf(msg, func() bool { return sock.connected && to(sock) })
	}
	return nil
}

// Close ends every session: polling clients get a close packet, WebSocket
// clients a 1001 (going away) close frame. Later requests get errors.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	socks := make([]*Socket, 0, len(s.sessions))
	for _, sock := range s.sessions {
		socks = append(socks, sock)
	}
	s.mu.Unlock()
	for _, sock := range socks {
		sock.close("server shutting down")
	}
}

func newID() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) newSession(transport string) (*Socket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("server is closed")
	}
	if len(s.sessions) >= s.opts.MaxSessions {
		return nil, fmt.Errorf("too many sessions (limit %d)", s.opts.MaxSessions)
	}
	sock := &Socket{
		ID:        newID(),
		sid:       newID(),
		srv:       s,
		websocket: transport == "websocket",
		notify:    make(chan struct{}, 1),
		pong:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	s.sessions[sock.sid] = sock
	go sock.heartbeat()
	return sock, nil
}

func (s *Server) lookup(sid string) *Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

func (s *Server) remove(sock *Socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sock.sid] == sock {
		delete(s.sessions, sock.sid)
	}
}

// poll answers a long-polling GET with the queued packets, waiting for some.
func (s *Server) poll(w http.ResponseWriter, r *http.Request, sock *Socket) {
	packets, status := sock.takeForPoll(r.Context())
	if status != 0 {
		writeError(w, status, errBadRequest, "overlapping poll or session not polling")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = io.WriteString(w, strings.Join(packets, recordSeparator))
}

// receive handles a polling POST carrying client packets.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, sock *Socket) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.MaxPayload)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequest, "reading body: "+err.Error())
		return
	}
	if len(body) > s.opts.MaxPayload {
		writeError(w, http.StatusRequestEntityTooLarge, errBadRequest, "payload too large")
		sock.close("payload too large")
		return
	}
	packets, err := SplitPayload(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequest, err.Error())
		sock.close("bad payload")
		return
	}
	for _, p := range packets {
		if err := sock.handle(r, p); err != nil {
			s.opts.Logf("socket.io: session %s: %v", sock.sid, err)
		}
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
}

// serveWebSocket runs a WebSocket transport: a fresh session (open packet
// first) or an upgrade of a polling one (probe, then "5").
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, sock *Socket, upgrade bool) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		if upgrade {
			sock.abortUpgrade()
		} else {
			sock.close("websocket accept failed")
		}
		return
	}
	conn.SetReadLimit(int64(s.opts.MaxPayload))
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-sock.done:
			_ = conn.Close(websocket.StatusGoingAway, sock.closeReason())
		case <-ctx.Done():
		}
	}()
	if upgrade {
		if err := s.probe(ctx, conn, sock); err != nil {
			s.opts.Logf("socket.io: session %s: upgrade: %v", sock.sid, err)
			sock.abortUpgrade()
			_ = conn.Close(websocket.StatusPolicyViolation, "upgrade failed")
			return
		}
	} else if err := conn.Write(ctx, websocket.MessageText, []byte(sock.openPacket())); err != nil {
		sock.close("websocket write failed")
		return
	}
	go s.writeLoop(ctx, conn, sock)
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			sock.close("transport closed")
			return
		}
		if typ != websocket.MessageText {
			s.opts.Logf("socket.io: session %s: %v", sock.sid, ErrBinaryUnsupported)
			continue
		}
		if err := sock.handle(r, string(data)); err != nil {
			s.opts.Logf("socket.io: session %s: %v", sock.sid, err)
		}
	}
}

// probe runs the upgrade handshake: 2probe → 3probe, a noop to release the
// pending poll, then the client's "5".
func (s *Server) probe(ctx context.Context, conn *websocket.Conn, sock *Socket) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.PingTimeout)
	defer cancel()
	_, data, err := conn.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading probe: %w", err)
	}
	if string(data) != "2probe" {
		return fmt.Errorf("expected 2probe, got %q", truncate(data))
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("3probe")); err != nil {
		return fmt.Errorf("answering probe: %w", err)
	}
	sock.releasePoll()
	_, data, err = conn.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading upgrade: %w", err)
	}
	if string(data) != string(eioUpgrade) {
		return fmt.Errorf("expected upgrade packet, got %q", truncate(data))
	}
	sock.finishUpgrade()
	return nil
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}

// writeLoop drains the socket's queue onto the WebSocket. When the session
// ends it returns and leaves the close handshake to serveWebSocket.
func (s *Server) writeLoop(ctx context.Context, conn *websocket.Conn, sock *Socket) {
	for {
		for _, p := range sock.drain() {
			if err := conn.Write(ctx, websocket.MessageText, []byte(p)); err != nil {
				sock.close("websocket write failed")
				return
			}
		}
		select {
		case <-sock.notify:
		case <-sock.done:
			return
		case <-ctx.Done():
			return
		}
	}
}
