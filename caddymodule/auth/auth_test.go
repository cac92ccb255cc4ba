package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestBearerAuthProvision(t *testing.T) {
	t.Setenv("IMPETUS_TEST_KEY", "s3cret")
	sum := sha256.Sum256([]byte("hashed"))
	keyFile := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keyFile, []byte("# team keys\nteam-b b-secret\nlonely\n"), 0o600)
	cases := []struct {
		name    string
		auth    BearerAuth
		wantErr string
	}{
		{name: "env key", auth: BearerAuth{Keys: []APIKey{{Key: "{env.IMPETUS_TEST_KEY}"}}}},
		{name: "hash", auth: BearerAuth{Keys: []APIKey{{ID: "h", SHA256: hex.EncodeToString(sum[:])}}}},
		{name: "key file", auth: BearerAuth{KeyFile: keyFile}},
		{name: "unset env", auth: BearerAuth{Keys: []APIKey{{Key: "{env.IMPETUS_NOT_SET_ANYWHERE}"}}}, wantErr: "expanded to nothing"},
		{name: "no keys", auth: BearerAuth{}, wantErr: "no API keys"},
		{name: "bad hash", auth: BearerAuth{Keys: []APIKey{{SHA256: "abc"}}}, wantErr: "64 hex digits"},
		{name: "both", auth: BearerAuth{Keys: []APIKey{{Key: "a", SHA256: hex.EncodeToString(sum[:])}}}, wantErr: "not both"},
		{name: "duplicate ids", auth: BearerAuth{Keys: []APIKey{{ID: "x", Key: "a"}, {ID: "x", Key: "b"}}}, wantErr: "duplicate"},
		{name: "missing file", auth: BearerAuth{KeyFile: "/nonexistent/keys"}, wantErr: "key file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.auth
			err := b.Provision(newCtx(t))
			if c.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, c.wantErr)
				}
				return
			}
			for _, k := range b.Keys {
				if k.Key != "" {
					t.Fatal("plain key kept in memory after provisioning")
				}
			}
		})
	}
}

func TestBearerAuthenticate(t *testing.T) {
	b := BearerAuth{Keys: []APIKey{{ID: "a", Key: "alpha"}, {ID: "b", Key: "beta", Models: []string{"m1"}}}}
	if err := b.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		header string
		ok     bool
		user   string
	}{
		{"Bearer alpha", true, "a"},
		{"bearer beta", true, "b"},
		{"Bearer  beta ", true, "b"},
		{"Bearer gamma", false, ""},
		{"Basic alpha", false, ""},
		{"Bearer ", false, ""},
		{"", false, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		user, ok, err := b.Authenticate(w, r)
		if err != nil || ok != c.ok || user.ID != c.user {
			t.Errorf("%q: got (%q, %v, %v), want (%q, %v)", c.header, user.ID, ok, err, c.user, c.ok)
		}
		if !ok && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: no WWW-Authenticate challenge", c.header)
		}
		if c.user == "b" && user.Metadata["models"] != "m1" {
			t.Errorf("model allow-list not carried: %v", user.Metadata)
		}
	}
}

func newCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}
