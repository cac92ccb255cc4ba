package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of testdata/adapt/*.caddyfiletest")

// TestCaddyfileAdapt adapts each testdata/adapt/*.caddyfiletest: a Caddyfile,
// a line of ten dashes, then the expected JSON, or an expected error message
// (which must name the file and line) when the second part is not JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.SplitN(string(data), "----------", 2)
			if len(parts) != 2 {
				t.Fatalf("%s: no ---------- separator", file)
			}
			cfg, expected := strings.TrimSpace(parts[0])+"\n", strings.TrimSpace(parts[1])
			if strings.HasPrefix(expected, "{") {
				if *update {
					out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
					if err != nil {
						t.Fatal(err)
					}
					var buf bytes.Buffer
					json.Indent(&buf, out, "", "\t")
					os.WriteFile(file, []byte(strings.TrimSpace(parts[0])+"\n----------\n"+buf.String()+"\n"), 0o644)
					return
				}
				if !caddytest.CompareAdapt(t, file, cfg, "caddyfile", expected) {
					t.Errorf("adapting %s gave other JSON than expected", file)
				}
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
			if err == nil {
				t.Fatalf("expected an error containing %q, got none", expected)
			}
			if !strings.Contains(err.Error(), expected) {
				t.Fatalf("error %q does not contain %q", err, expected)
			}
		})
	}
}
