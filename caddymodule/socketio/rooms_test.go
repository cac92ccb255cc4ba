package socketio

import (
	"reflect"
	"strings"
	"testing"
)

// TestEmitRoom checks who hears a room's events: members, and sockets that
// joined no room; Emit still reaches everyone.
func TestEmitRoom(t *testing.T) {
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	connect := func() *Socket {
		sock, err := srv.newSession("polling")
		if err != nil {
			t.Fatal(err)
		}
		sock.mu.Lock()
		sock.connected = true
		sock.mu.Unlock()
		return sock
	}
	none, hw, both := connect(), connect(), connect()
	hw.Join("hardware")
	both.Join("hardware")
	both.Join("models")
	both.Join("gone")
	both.Leave("gone")
	if got := both.Rooms(); !reflect.DeepEqual(got, []string{"hardware", "models"}) {
		t.Fatalf("rooms: %v", got)
	}
	if err := srv.EmitRoom("models", "model_status", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := srv.EmitRoom("hardware", "hardware_metrics", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Emit("all", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sock *Socket
		want []string
	}{
		{"no room", none, []string{"model_status", "hardware_metrics", "all"}},
		{"hardware", hw, []string{"hardware_metrics", "all"}},
		{"hardware+models", both, []string{"model_status", "hardware_metrics", "all"}},
	} {
		var got []string
		for _, p := range tc.sock.drain() {
			for _, name := range tc.want {
				if strings.Contains(p, `"`+name+`"`) {
					got = append(got, name)
				}
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s heard %v, want %v", tc.name, got, tc.want)
		}
	}
}
