// Package auth is the impetus_bearer authentication provider (Caddyfile
// directive impetus_auth) and the per-key grants the handlers check: which
// models a key may use and whether it may change server state.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
)

func init() {
	caddy.RegisterModule(BearerAuth{})
	httpcaddyfile.RegisterHandlerDirective("impetus_auth", parseBearerAuth)
	httpcaddyfile.RegisterDirectiveOrder("impetus_auth", httpcaddyfile.After, "basic_auth")
}

// APIKey is one accepted bearer key. Give either Key (plain, or a placeholder
// such as {env.IMPETUS_API_KEY}, expanded at provision time so the secret
// never lands in the autosaved config) or SHA256 (hex of the key's SHA-256).
type APIKey struct {
	// Identifies the key in logs, metrics and {http.auth.user.id}; never the
	// key itself. Default: key0, key1, … in order.
	ID string `json:"id,omitempty"`
	// The key, or a placeholder that expands to it. Must not be empty.
	Key string `json:"key,omitempty"`
	// Hex SHA-256 of the key, for configs that should not hold the key.
	SHA256 string `json:"sha256,omitempty"`
	// Models this key may use; empty means all.
	Models []string `json:"models,omitempty"`
	// Admin lets the key change server state: load, unload, warm up and
	// benchmark models, download models and set the performance mode. When
	// no key of the provider is marked admin, every key without a Models
	// restriction is an admin (configs written before this option keep
	// working); a key restricted to models is an admin only when marked.
	Admin bool `json:"admin,omitempty"`

	hash  [sha256.Size]byte
	admin bool // the effective capability, set in Provision
}

// BearerAuth authenticates `Authorization: Bearer <key>` against configured
// keys, comparing SHA-256 digests in constant time.
type BearerAuth struct {
	// The accepted keys. At least one (from here or KeyFile) is required: an
	// empty or unset key is an error, never open access.
	Keys []APIKey `json:"keys,omitempty"`
	// A file with one key per line ("id key" or just "key"; "#" comments).
	// Read at provision time, so a reload picks up edits.
	KeyFile string `json:"key_file,omitempty"`
	// Realm sent in WWW-Authenticate. Default: "impetus".
	Realm string `json:"realm,omitempty"`
	// Ids of keys from KeyFile to mark as admins (see APIKey.Admin); keys
	// given in Keys carry their own Admin field.
	AdminIDs []string `json:"admin_ids,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (BearerAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.impetus_bearer",
		New: func() caddy.Module { return new(BearerAuth) },
	}
}

// Provision expands placeholders, reads the key file and hashes every key.
func (b *BearerAuth) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	if b.Realm == "" {
		b.Realm = "impetus"
	}
	keys := make([]APIKey, 0, len(b.Keys))
	for i, k := range b.Keys {
		if k.ID == "" {
			k.ID = fmt.Sprintf("key%d", i)
		}
		raw := k.Key
		k.Key = repl.ReplaceAll(k.Key, "")
		switch {
		case k.Key != "" && k.SHA256 != "":
			return fmt.Errorf("key %q: give key or sha256, not both", k.ID)
		case k.Key != "":
			k.hash = sha256.Sum256([]byte(k.Key))
		case k.SHA256 != "":
			h, err := hex.DecodeString(strings.TrimSpace(k.SHA256))
			if err != nil || len(h) != sha256.Size {
				return fmt.Errorf("key %q: sha256 must be 64 hex digits", k.ID)
			}
			copy(k.hash[:], h)
		case raw != "":
			return fmt.Errorf("key %q is empty: %s expanded to nothing (is the environment variable set?)", k.ID, raw)
		default:
			return fmt.Errorf("key %q is empty", k.ID)
		}
		k.Key = "" // keep only the digest in memory
		keys = append(keys, k)
	}
	if b.KeyFile != "" {
		fileKeys, err := readKeyFile(repl.ReplaceAll(b.KeyFile, ""))
		if err != nil {
			return err
		}
		keys = append(keys, fileKeys...)
	}
	b.Keys = keys
	for _, id := range b.AdminIDs {
		found := false
		for i := range b.Keys {
			if b.Keys[i].ID == id {
				b.Keys[i].Admin, found = true, true
			}
		}
		if !found {
			return fmt.Errorf("admin_ids: no key with id %q", id)
		}
	}
	anyAdmin := false
	for _, k := range b.Keys {
		anyAdmin = anyAdmin || k.Admin
	}
	for i := range b.Keys {
		k := &b.Keys[i]
		k.admin = k.Admin || (!anyAdmin && len(k.Models) == 0)
	}
	return b.Validate()
}

// readKeyFile parses "id key" or "key" lines; blank lines and # comments are skipped.
func readKeyFile(path string) ([]APIKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	var keys []APIKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		k := APIKey{ID: fmt.Sprintf("file%d", n+1)}
		switch len(f) {
		case 1:
			k.hash = sha256.Sum256([]byte(f[0]))
		case 2:
			k.ID = f[0]
			k.hash = sha256.Sum256([]byte(f[1]))
		default:
			return nil, fmt.Errorf("key file %s line %d: want \"id key\" or \"key\"", path, n+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Validate refuses a provider without keys and duplicate ids.
func (b *BearerAuth) Validate() error {
	if len(b.Keys) == 0 {
		return fmt.Errorf("impetus_bearer: no API keys configured; an empty key never means open access")
	}
	seen := map[string]bool{}
	for _, k := range b.Keys {
		if seen[k.ID] {
			return fmt.Errorf("impetus_bearer: duplicate key id %q", k.ID)
		}
		seen[k.ID] = true
	}
	return nil
}

// Authenticate checks the bearer token in constant time (see Lookup).
func (b *BearerAuth) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	token, ok := BearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", b.Realm))
		caddyhttp.SetVar(r.Context(), httperr.ReasonVar, "Missing API key: send it as 'Authorization: Bearer <key>'")
		return caddyauth.User{}, false, nil
	}
	k, ok := b.Lookup(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\"", b.Realm))
		caddyhttp.SetVar(r.Context(), httperr.ReasonVar, "Invalid API key")
		return caddyauth.User{}, false, nil
	}
	return k.user(), true, nil
}

// Lookup finds the key whose digest matches token. Every configured digest
// is compared, so timing reveals neither which key matched nor how much of it.
func (b *BearerAuth) Lookup(token string) (*APIKey, bool) {
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range b.Keys {
		if subtle.ConstantTimeCompare(sum[:], b.Keys[i].hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, false
	}
	return &b.Keys[match], true
}

// user is the Caddy user of a key: its id, and as metadata its model
// allow-list ({http.auth.user.models}) and admin capability
// ({http.auth.user.admin}), which AuthorizeModel and RequireAdmin read.
func (k *APIKey) user() caddyauth.User {
	user := caddyauth.User{ID: k.ID, Metadata: map[string]string{"admin": strconv.FormatBool(k.admin)}}
	if len(k.Models) > 0 {
		user.Metadata["models"] = strings.Join(k.Models, ",")
	}
	return user
}

// BearerToken extracts the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	impetus_auth [<key>] {
//		key [<id>] <key>            # plain key or {env.VAR}
//		key_sha256 [<id>] <hex>     # SHA-256 of a key
//		key_file <path>             # "id key" lines
//		models <id> <model...>      # restrict key <id> to these models
//		admin <id...>               # keys that may change server state
//		realm <realm>
//	}
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		b.Keys = append(b.Keys, APIKey{Key: d.Val()})
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	type restriction struct {
		id     string
		models []string
	}
	var restrictions []restriction
	var admins []string
	for d.NextBlock(0) {
		switch d.Val() {
		case "key", "key_sha256":
			opt := d.Val()
			args := d.RemainingArgs()
			var k APIKey
			switch len(args) {
			case 1:
			case 2:
				k.ID = args[0]
			default:
				return d.Errf("%s takes [<id>] <value>", opt)
			}
			if opt == "key" {
				k.Key = args[len(args)-1]
			} else {
				k.SHA256 = args[len(args)-1]
			}
			b.Keys = append(b.Keys, k)
		case "key_file":
			if !d.NextArg() {
				return d.ArgErr()
			}
			b.KeyFile = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "models":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("models takes <key id> <model...>")
			}
			restrictions = append(restrictions, restriction{args[0], args[1:]})
		case "admin":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("admin takes <key id...>")
			}
			admins = append(admins, args...)
		case "realm":
			if !d.NextArg() {
				return d.ArgErr()
			}
			b.Realm = d.Val()
		default:
			return d.Errf("unrecognized impetus_auth option %q", d.Val())
		}
	}
	for i := range b.Keys {
		if b.Keys[i].ID == "" {
			b.Keys[i].ID = fmt.Sprintf("key%d", i)
		}
	}
	for _, r := range restrictions {
		found := false
		for i := range b.Keys {
			if b.Keys[i].ID == r.id {
				b.Keys[i].Models = append(b.Keys[i].Models, r.models...)
				found = true
			}
		}
		if !found {
			return d.Errf("models: no key with id %q", r.id)
		}
	}
	for _, id := range admins {
		found := false
		for i := range b.Keys {
			if b.Keys[i].ID == id {
				b.Keys[i].Admin, found = true, true
			}
		}
		switch {
		case found:
		case b.KeyFile != "":
			b.AdminIDs = append(b.AdminIDs, id) // resolved against the file at provision
		default:
			return d.Errf("admin: no key with id %q", id)
		}
	}
	if len(b.Keys) == 0 && b.KeyFile == "" {
		return d.Err("impetus_auth needs at least one key or a key_file")
	}
	return nil
}

func parseBearerAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var b BearerAuth
	if err := b.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return caddyauth.Authentication{
		ProvidersRaw: caddy.ModuleMap{"impetus_bearer": caddyconfig.JSON(b, nil)},
	}, nil
}

// Interface guards
var (
	_ caddy.Provisioner       = (*BearerAuth)(nil)
	_ caddy.Validator         = (*BearerAuth)(nil)
	_ caddyauth.Authenticator = (*BearerAuth)(nil)
	_ caddyfile.Unmarshaler   = (*BearerAuth)(nil)
)
