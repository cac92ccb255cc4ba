// Package socketio is a small server for the subset of Engine.IO v4 and
// Socket.IO v5 that the official socket.io-client needs with its default
// options: HTTP long-polling, the upgrade to WebSocket, heartbeats, and
// text events on the main namespace "/". Binary packets are not supported.
package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Engine.IO packet types (the first byte of a text packet).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// recordSeparator joins packets in a polling payload.
const recordSeparator = "\x1e"

// Socket.IO packet types (the first byte of an Engine.IO message).
const (
	TypeConnect      = 0
	TypeDisconnect   = 1
	TypeEvent        = 2
	TypeAck          = 3
	TypeConnectError = 4
	TypeBinaryEvent  = 5
	TypeBinaryAck    = 6
)

// Packet is a decoded Socket.IO packet.
type Packet struct {
	Type      int
	Namespace string // "/" unless the packet names another
	AckID     int64  // -1 when the packet asks for no acknowledgement
	Data      json.RawMessage
}

// ErrBinaryUnsupported is returned for binary Socket.IO packets.
var ErrBinaryUnsupported = errors.New("binary socket.io packets are not supported")

// maxAckID keeps acknowledgement ids within what clients send (a JS counter).
const maxAckID = 1<<53 - 1

// DecodePacket parses one Socket.IO packet as carried in an Engine.IO
// message: type digit, optional "/namespace,", optional ack id, optional JSON.
func DecodePacket(s string) (Packet, error) {
	p := Packet{Namespace: "/", AckID: -1}
	if s == "" {
		return p, errors.New("empty socket.io packet")
	}
	if s[0] < '0' || s[0] > '6' {
		return p, fmt.Errorf("unknown socket.io packet type %q", s[0])
	}
	p.Type = int(s[0] - '0')
	rest := s[1:]
	if p.Type == TypeBinaryEvent || p.Type == TypeBinaryAck {
		return p, ErrBinaryUnsupported
	}
	if strings.HasPrefix(rest, "/") {
		end := strings.IndexByte(rest, ',')
		if end < 0 {
			// A namespace with no payload may end the packet.
			end = len(rest)
		}
		p.Namespace = rest[:end]
		rest = strings.TrimPrefix(rest[end:], ",")
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.ParseInt(rest[:digits], 10, 64)
		if err != nil || id > maxAckID {
			return p, fmt.Errorf("ack id %q out of range", rest[:digits])
		}
		p.AckID = id
		rest = rest[digits:]
	}
	if rest != "" {
		if !json.Valid([]byte(rest)) {
			return p, errors.New("socket.io packet data is not valid JSON")
		}
		p.Data = json.RawMessage(rest)
	}
	switch p.Type {
	case TypeEvent, TypeAck:
		if !strings.HasPrefix(rest, "[") {
			return p, errors.New("socket.io event data must be a JSON array")
		}
	case TypeConnect, TypeConnectError:
		if rest != "" && !strings.HasPrefix(rest, "{") && p.Type == TypeConnect {
			return p, errors.New("socket.io connect data must be a JSON object")
		}
	}
	return p, nil
}

// Event returns the name and arguments of an event packet.
func (p Packet) Event() (string, []json.RawMessage, error) {
	if p.Type != TypeEvent {
		return "", nil, fmt.Errorf("packet type %d is not an event", p.Type)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil {
		return "", nil, fmt.Errorf("decoding event: %w", err)
	}
	if len(args) == 0 {
		return "", nil, errors.New("event has no name")
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return "", nil, fmt.Errorf("event name is not a string: %w", err)
	}
	return name, args[1:], nil
}

// EncodeEvent returns the Engine.IO message carrying a Socket.IO event for
// the main namespace: 42["name",payload].
func EncodeEvent(name string, payload any) (string, error) {
	body, err := json.Marshal([]any{name, payload})
	if err != nil {
		return "", fmt.Errorf("encoding event %q: %w", name, err)
	}
	return string(eioMessage) + string('0'+TypeEvent) + string(body), nil
}

// encodeNamespaced builds an Engine.IO message of a Socket.IO packet.
func encodeNamespaced(typ int, nsp string, data string) string {
	var b strings.Builder
	b.WriteByte(eioMessage)
	b.WriteByte(byte('0' + typ))
	if nsp != "/" {
		b.WriteString(nsp)
		b.WriteByte(',')
	}
	b.WriteString(data)
	return b.String()
}

// SplitPayload splits a polling body into Engine.IO packets.
func SplitPayload(body string) ([]string, error) {
	if body == "" {
		return nil, errors.New("empty polling payload")
	}
	packets := strings.Split(body, recordSeparator)
	for _, p := range packets {
		if p == "" {
			return nil, errors.New("empty packet in polling payload")
		}
		if p[0] == 'b' {
			return nil, ErrBinaryUnsupported
		}
		if p[0] < eioOpen || p[0] > eioNoop {
			return nil, fmt.Errorf("unknown engine.io packet type %q", p[0])
		}
	}
	return packets, nil
}
