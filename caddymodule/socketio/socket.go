package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Socket is one Engine.IO session and its Socket.IO connection to "/".
type Socket struct {
	// ID is the Socket.IO socket id the client sees (distinct from the
	// Engine.IO session id, which is a credential for the session's requests).
	ID string

	sid    string
	srv    *Server
	notify chan struct{} // wakes the consumer of queue
	pong   chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	queue     []string
	websocket bool // the WebSocket transport carries the session
	upgrading bool // a probe succeeded or is under way; polls get noops
	polling   bool // a long-poll GET is waiting
	connected bool // joined the main namespace
	rooms     map[string]bool
	identity  any // what Options.Authorize returned at CONNECT
	refusals  int // CONNECTs that Authorize refused
	closed    bool
	reason    string
}

// Emit sends an event to this socket.
func (s *Socket) Emit(name string, payload any) error {
	msg, err := EncodeEvent(name, payload)
	if err != nil {
		return err
	}
	s.send(msg)
	return nil
}

// Identity is the value Options.Authorize returned when the client
// connected; nil without Authorize or before the CONNECT.
func (s *Socket) Identity() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// Join adds the socket to a room; see Server.EmitRoom.
func (s *Socket) Join(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms == nil {
		s.rooms = map[string]bool{}
	}
	s.rooms[room] = true
}

// Leave takes the socket out of a room.
func (s *Socket) Leave(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rooms, room)
}

// Rooms lists the rooms the socket has joined, sorted.
func (s *Socket) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// listensLocked reports whether an event for room reaches this socket: it
// does when the socket joined that room or has joined none. s.mu is held.
func (s *Socket) listensLocked(room string) bool {
	return len(s.rooms) == 0 || s.rooms[room]
}

func (s *Socket) openPacket() string {
	o := s.srv.opts
	body, _ := json.Marshal(map[string]any{
		"sid":          s.sid,
		"upgrades":     s.upgrades(),
		"pingInterval": o.PingInterval.Milliseconds(),
		"pingTimeout":  o.PingTimeout.Milliseconds(),
		"maxPayload":   o.MaxPayload,
	})
	return string(eioOpen) + string(body)
}

func (s *Socket) upgrades() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.websocket {
		return []string{}
	}
	return []string{"websocket"}
}

func (s *Socket) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected && !s.closed
}

// maxRefusals is how many refused CONNECTs a session may send before it is
// closed.
const maxRefusals = 3

// maxQueued bounds the packets waiting for a client that stopped reading;
// past it the session is closed rather than growing without end.
const maxQueued = 1000

// send queues an Engine.IO packet for whichever transport carries the session.
func (s *Socket) send(packet string) { s.sendIf(packet, func() bool { return true }) }

// sendIf queues packet when want, called with s.mu held, says so; checking
// and queueing under one lock keeps a broadcast from slipping past a Join or
// Leave whose acknowledgement the client has already seen.
func (s *Socket) sendIf(packet string, want func() bool) {
	s.mu.Lock()
	if s.closed || !want() {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= maxQueued {
		s.mu.Unlock()
		s.close("send queue full")
		return
	}
	s.queue = append(s.queue, packet)
	s.mu.Unlock()
	s.wake()
}

func (s *Socket) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Socket) drain() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// takeForPoll waits for packets for a long-poll GET. A non-zero status means
// the poll is refused (overlapping, or the session is on WebSocket now).
func (s *Socket) takeForPoll(ctx context.Context) ([]string, int) {
	s.mu.Lock()
	if s.websocket || s.polling {
		s.mu.Unlock()
		return nil, http.StatusBadRequest
	}
	s.polling = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.polling = false
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return []string{string(eioClose)}, 0
		case s.upgrading:
			s.mu.Unlock()
			return []string{string(eioNoop)}, 0
		case len(s.queue) > 0:
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			return q, 0
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.done:
		case <-ctx.Done():
			return nil, 0
		}
	}
}

func (s *Socket) beginUpgrade() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.websocket || s.upgrading || s.closed {
		return false
	}
	s.upgrading = true
	return true
}

func (s *Socket) abortUpgrade() {
	s.mu.Lock()
	s.upgrading = false
	s.mu.Unlock()
}

// releasePoll wakes a pending poll so it answers with a noop.
func (s *Socket) releasePoll() { s.wake() }

func (s *Socket) finishUpgrade() {
	s.mu.Lock()
	s.websocket, s.upgrading = true, false
	s.mu.Unlock()
	s.wake()
}

// close ends the session once; the transports see done and finish.
func (s *Socket) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.reason, s.connected = true, reason, false
	s.mu.Unlock()
	close(s.done)
	s.srv.remove(s)
}

func (s *Socket) closeReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// heartbeat pings every PingInterval and closes the session when a pong
// does not come within PingTimeout; this is also what expires idle sessions.
func (s *Socket) heartbeat() {
	o := s.srv.opts
	for {
		select {
		case <-time.After(o.PingInterval):
		case <-s.done:
			return
		}
		select { // drop a stale pong
		case <-s.pong:
		default:
		}
		s.send(string(eioPing))
		select {
		case <-s.pong:
		case <-time.After(o.PingTimeout):
			s.close("ping timeout")
			return
		case <-s.done:
			return
		}
	}
}

// handle processes one Engine.IO packet from the client; r is the HTTP
// request that carried it.
func (s *Socket) handle(r *http.Request, p string) error {
	if p == "" {
		return fmt.Errorf("empty engine.io packet")
	}
	switch p[0] {
	case eioClose:
		s.close("client closed")
	case eioPong:
		select {
		case s.pong <- struct{}{}:
		default:
		}
	case eioPing: // clients of older protocols ping; answer in kind
		s.send(string(eioPong) + p[1:])
	case eioNoop, eioUpgrade:
	case eioMessage:
		return s.handleMessage(r, p[1:])
	default:
		return fmt.Errorf("unexpected engine.io packet type %q", p[0])
	}
	return nil
}

func (s *Socket) handleMessage(r *http.Request, msg string) error {
	pkt, err := DecodePacket(msg)
	if err != nil {
		return err
	}
	o := s.srv.opts
	switch pkt.Type {
	case TypeConnect:
		if pkt.Namespace != "/" {
			s.send(encodeNamespaced(TypeConnectError, pkt.Namespace, `{"message":"Invalid namespace"}`))
			return nil
		}
		var identity any
		if o.Authorize != nil {
			id, err := o.Authorize(r, pkt.Data)
			if err != nil {
				refusal, _ := json.Marshal(map[string]string{"message": err.Error()})
				s.send(encodeNamespaced(TypeConnectError, "/", string(refusal)))
				s.mu.Lock()
				s.refusals++
				n := s.refusals
				s.mu.Unlock()
				if n > maxRefusals {
					// One WebSocket can carry many CONNECTs, none of which
					// passes HTTP rate limiting: do not let it guess keys.
					s.close("too many refused connects")
				}
				return nil
			}
			identity = id
		}
		body, _ := json.Marshal(map[string]string{"sid": s.ID})
		s.mu.Lock()
		s.connected = !s.closed
		s.identity = identity
		s.mu.Unlock()
		s.send(encodeNamespaced(TypeConnect, "/", string(body)))
		if o.OnConnect != nil {
			o.OnConnect(s)
		}
	case TypeDisconnect:
		s.mu.Lock()
		s.connected = false
		s.mu.Unlock()
	case TypeEvent:
		if !s.isConnected() || pkt.Namespace != "/" {
			return fmt.Errorf("event for namespace %q that the client has not joined", pkt.Namespace)
		}
		name, args, err := pkt.Event()
		if err != nil {
			return err
		}
		if o.OnEvent != nil {
			o.OnEvent(s, name, args)
		}
		if pkt.AckID >= 0 {
			s.send(encodeNamespaced(TypeAck, "/", strconv.FormatInt(pkt.AckID, 10)+"[]"))
		}
	case TypeAck, TypeConnectError:
	}
	return nil
}
