package manage

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenAPIValidator checks the document with @apidevtools/swagger-parser
// (npm), an OpenAPI 3.1 validator independent of this code.
func TestOpenAPIValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node; skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the OpenAPI validator test needs node and npm")
	}
	dir := filepath.Join("..", "testdata", "openapi")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@apidevtools", "swagger-parser")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm not installed; the OpenAPI validator test needs it")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm ci failed (offline?): %v\n%s", err, out)
		}
	}
	raw, err := openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "validate.js", spec)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the OpenAPI validator refused the document: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
