package socketio

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// open starts a polling session without joining the namespace.
func open(t *testing.T, url string) *testClient {
	t.Helper()
	c := &testClient{t: t, url: url}
	code, body := c.do(http.MethodGet, "EIO=4&transport=polling", "")
	if code != http.StatusOK || !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %d %s", code, body)
	}
	var o struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &o); err != nil {
		t.Fatal(err)
	}
	c.sid = o.SID
	return c
}

// TestAuthorizeConnect: Authorize sees the CONNECT's auth payload, a refusal
// is a CONNECT_ERROR that leaves the client out of broadcasts, and EmitEach
// chooses each socket's payload from the identity Authorize returned.
func TestAuthorizeConnect(t *testing.T) {
	srv, ts := newTestServer(t, Options{Authorize: func(r *http.Request, auth json.RawMessage) (any, error) {
		var a struct {
			Token string `json:"token"`
		}
		_ = json.Unmarshal(auth, &a)
		if a.Token != "good" && a.Token != "other" {
			return nil, errors.New("bad key")
		}
		return a.Token, nil
	}})
	good, other, bad, none := open(t, ts.URL), open(t, ts.URL), open(t, ts.URL), open(t, ts.URL)
	good.post(`40{"token":"good"}`)
	other.post(`40{"token":"other"}`)
	bad.post(`40{"token":"nope"}`)
	none.post(`40`)
	if got := good.poll(); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("good: %s", got)
	}
	if got := other.poll(); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("other: %s", got)
	}
	for _, c := range []*testClient{bad, none} {
		if got := c.poll(); got != `44{"message":"bad key"}` {
			t.Fatalf("refused: %s", got)
		}
	}
	err := srv.EmitEach("r", "e", func(s *Socket) (any, bool) {
		id, _ := s.Identity().(string)
		return id, id == "good"
	})
	if err != nil {
		t.Fatal(err)
	}
	// A session that keeps guessing is closed.
	for range maxRefusals {
		bad.post(`40{"token":"guess"}`)
	}
	if code, _ := bad.do(http.MethodGet, "EIO=4&transport=polling&sid="+bad.sid, ""); code != http.StatusBadRequest {
		t.Errorf("after %d refusals the session still answers %d", maxRefusals+1, code)
	}
	_ = srv.EmitEach("r", "e", func(s *Socket) (any, bool) {
		id, _ := s.Identity().(string)
		return "all:" + id, true
	})
	if got := good.poll(); got != `42["e","good"]`+recordSeparator+`42["e","all:good"]` {
		t.Errorf("good got %q", got)
	}
	if got := other.poll(); got != `42["e","all:other"]` {
		t.Errorf("other got %q", got)
	}
}
