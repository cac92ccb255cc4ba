package socketio

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in    string
		typ   int
		nsp   string
		ack   int64
		data  string
		event string
	}{
		{in: "0", typ: TypeConnect, nsp: "/", ack: -1},
		{in: `0{"token":"x"}`, typ: TypeConnect, nsp: "/", ack: -1, data: `{"token":"x"}`},
		{in: "0/admin,", typ: TypeConnect, nsp: "/admin", ack: -1},
		{in: "0/admin", typ: TypeConnect, nsp: "/admin", ack: -1},
		{in: "1", typ: TypeDisconnect, nsp: "/", ack: -1},
		{in: `2["subscribe","metrics"]`, typ: TypeEvent, nsp: "/", ack: -1, data: `["subscribe","metrics"]`, event: "subscribe"},
		{in: `212["ping"]`, typ: TypeEvent, nsp: "/", ack: 12, data: `["ping"]`, event: "ping"},
		{in: `2/chat,3["hi",{"a":1}]`, typ: TypeEvent, nsp: "/chat", ack: 3, data: `["hi",{"a":1}]`, event: "hi"},
		{in: `37[]`, typ: TypeAck, nsp: "/", ack: 7, data: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := DecodePacket(tt.in)
			if err != nil {
				t.Fatalf("DecodePacket: %v", err)
			}
			if p.Type != tt.typ || p.Namespace != tt.nsp || p.AckID != tt.ack || string(p.Data) != tt.data {
				t.Fatalf("got %+v (data %s)", p, p.Data)
			}
			if tt.event != "" {
				name, _, err := p.Event()
				if err != nil || name != tt.event {
					t.Fatalf("Event() = %q, %v", name, err)
				}
			}
		})
	}
}

func TestDecodePacketBad(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty socket.io packet"},
		{"9", "unknown socket.io packet type"},
		{"2", "event data must be a JSON array"},
		{`2{"a":1}`, "event data must be a JSON array"},
		{`2["x"`, "not valid JSON"},
		{`0"str"`, "connect data must be a JSON object"},
		{"299999999999999999999[]", "out of range"},
		{`51-["x",{"_placeholder":true,"num":0}]`, "binary"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := DecodePacket(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := DecodePacket("5"); !errors.Is(err, ErrBinaryUnsupported) {
		t.Fatalf("binary event: %v", err)
	}
}

func TestEventBad(t *testing.T) {
	for _, in := range []string{`2[]`, `2[1,2]`, `1`} {
		p, err := DecodePacket(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if _, _, err := p.Event(); err == nil {
			t.Fatalf("%s: Event() accepted it", in)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	got, err := EncodeEvent("hardware_metrics", map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `42["hardware_metrics",{"a":1}]`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, err := EncodeEvent("x", func() {}); err == nil {
		t.Fatal("encoded a func")
	}
	if got := encodeNamespaced(TypeConnectError, "/x", `{"message":"m"}`); got != `44/x,{"message":"m"}` {
		t.Fatalf("namespaced: %s", got)
	}
}

func TestSplitPayload(t *testing.T) {
	got, err := SplitPayload("40\x1e3\x1e42[\"a\"]")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != `40|3|42["a"]` {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"", "40\x1e", "bAAAA", "9", "\x1e3"} {
		if _, err := SplitPayload(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0", `0{"a":1}`, `2["x",1]`, `2/n,5["y"]`, "37[]", "1", "5", "299999999999999999999[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePacket(s)
		if err != nil {
			return
		}
		if p.Type == TypeEvent {
			_, _, _ = p.Event()
		}
	})
}

func FuzzSplitPayload(f *testing.F) {
	f.Add("40\x1e3")
	f.Add("2probe")
	f.Fuzz(func(t *testing.T, s string) {
		packets, err := SplitPayload(s)
		if err == nil && strings.Join(packets, recordSeparator) != s {
			t.Fatalf("split does not round-trip")
		}
	})
}
