package manage

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// routeLiterals finds the paths the routers match, by reading the source of
// the packages that serve them (this one, models, the OpenAI handler and the
// events handler): string literals compared with (or switched on, or prefix-tested
// against) a variable named route (relative to /api), path, or r.URL.Path.
func routeLiterals(t *testing.T) (exact, prefixes map[string]bool) {
	t.Helper()
	exact, prefixes = map[string]bool{}, map[string]bool{}
	var files []string
	for _, dir := range []string{".", "models", "../openaihandler", "../events"} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(matches) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		files = append(files, matches...)
	}
	fset := token.NewFileSet()
	add := func(set map[string]bool, subject ast.Expr, lit ast.Expr) {
		bl, ok := lit.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return
		}
		s, _ := strconv.Unquote(bl.Value)
		name := exprName(subject)
		if name == "rest" && s != "" {
			// The models package matches the path after "/models/" in rest.
			set["/api/models/"+s] = true
			return
		}
		if !strings.HasPrefix(s, "/") {
			return
		}
		switch name {
		case "route":
			set["/api"+s] = true
		case "path", "r.URL.Path":
			set[s] = true
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BinaryExpr:
				if x.Op == token.EQL || x.Op == token.NEQ {
					add(exact, x.X, x.Y)
				}
			case *ast.SwitchStmt:
				if x.Tag == nil {
					break
				}
				for _, c := range x.Body.List {
					for _, e := range c.(*ast.CaseClause).List {
						add(exact, x.Tag, e)
					}
				}
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "HasPrefix" && exprName(sel.X) == "strings" && len(x.Args) == 2 {
					add(prefixes, x.Args[0], x.Args[1])
				}
			}
			return true
		})
	}
	// Mount points and their trailing-slash aliases are not routes.
	for _, s := range []string{"/api", "/api/", "/v1", "/v1/", "/socket.io", "/docs/"} {
		delete(exact, s)
		delete(prefixes, s)
	}
	return exact, prefixes
}

func exprName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprName(x.X) + "." + x.Sel.Name
	}
	return ""
}

// TestOpenAPICoversRoutes keeps the document true: every path a router
// matches is documented, and every documented path is matched by a router.
func TestOpenAPICoversRoutes(t *testing.T) {
	exact, prefixes := routeLiterals(t)
	if len(exact) < 10 {
		t.Fatalf("found only %d routes in the source: %v", len(exact), exact)
	}
	documented := map[string]bool{}
	for _, op := range docOps {
		documented[op.path] = true
	}
	for p := range exact {
		if !documented[p] {
			t.Errorf("route %s is served but not in the OpenAPI document (docOps in docs.go)", p)
		}
	}
	for p := range prefixes {
		found := false
		for d := range documented {
			if strings.HasPrefix(d, p) && strings.Contains(d[len(p):], "{") {
				found = true
			}
		}
		if !found {
			t.Errorf("routes under %s are served but none is documented with a path parameter", p)
		}
	}
	for d := range documented {
		if exact[d] {
			continue
		}
		matched := false
		for p := range prefixes {
			if strings.HasPrefix(d, p) && strings.Contains(d[len(p):], "{") {
				matched = true
			}
		}
		if !matched {
			t.Errorf("documented path %s is not matched by any router", d)
		}
	}
}

func TestOpenAPIDocumentShape(t *testing.T) {
	doc := specDoc(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			o := op.(map[string]any)
			id := o["operationId"].(string)
			if ids[id] {
				t.Errorf("duplicate operationId %s", id)
			}
			ids[id] = true
			resps := o["responses"].(map[string]any)
			for _, code := range []string{"401", "429", "500"} {
				if resps[code] == nil {
					t.Errorf("%s %s lacks %s", method, path, code)
				}
			}
		}
	}
	// Every $ref resolves.
	raw, _ := openAPIDocument()
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, part := range strings.Split(string(raw), `"$ref": "`)[1:] {
		ref := part[:strings.Index(part, `"`)]
		switch {
		case strings.HasPrefix(ref, "#/components/schemas/"):
			if schemas[strings.TrimPrefix(ref, "#/components/schemas/")] == nil {
				t.Errorf("unresolved %s", ref)
			}
		case strings.HasPrefix(ref, "#/components/headers/"):
		default:
			t.Errorf("unexpected ref %s", ref)
		}
	}
	resps := doc["components"].(map[string]any)["responses"].(map[string]any)
	if resps["InsufficientStorage"] == nil || resps["NotImplemented"] == nil {
		t.Error("507 and 501 responses are not described")
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"Model": "model", "MaxCompletionTokens": "max_completion_tokens", "ToolCallID": "tool_call_id",
		"JSONSchema": "json_schema", "TopP": "top_p", "ConversationID": "conversation_id", "BestOf": "best_of", "Temperature": "temperature"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRequestSchemasMatchDecoders sends each documented request member to
// the real decoders: a name the decoder does not know would be refused.
func TestRequestSchemasMatchDecoders(t *testing.T) {
	doc := specDoc(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	props := func(name string) []string {
		var out []string
		for k := range schemas[name].(map[string]any)["properties"].(map[string]any) {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	lim := openai.DefaultLimits()
	for _, p := range props("ChatRequest") {
		body := `{"model":"m","messages":[{"role":"user","content":"hi"}],` + strconv.Quote(p) + `:null}`
		if p == "model" || p == "messages" {
			body = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
		}
		if _, err := openai.DecodeChatRequest(strings.NewReader(body), lim); err != nil {
			t.Errorf("chat member %q: %v", p, err)
		}
	}
	for _, p := range props("Message") {
		body := `{"model":"m","messages":[{"role":"user","content":"hi",` + strconv.Quote(p) + `:null}]}`
		if p == "role" || p == "content" {
			continue
		}
		if _, err := openai.DecodeChatRequest(strings.NewReader(body), lim); err != nil && strings.Contains(err.Message, "unknown field") {
			t.Errorf("message member %q: %v", p, err)
		}
	}
	for _, p := range props("CompletionRequest") {
		if p == "model" || p == "prompt" {
			continue
		}
		body := `{"model":"m","prompt":"x",` + strconv.Quote(p) + `:null}`
		if _, err := openai.DecodeCompletionRequest(strings.NewReader(body), lim); err != nil {
			t.Errorf("completion member %q: %v", p, err)
		}
	}
	for _, p := range props("EmbeddingRequest") {
		if p == "model" || p == "input" {
			continue
		}
		body := `{"model":"m","input":"x",` + strconv.Quote(p) + `:null}`
		if _, err := openai.DecodeEmbeddingRequest(strings.NewReader(body), lim); err != nil {
			t.Errorf("embedding member %q: %v", p, err)
		}
	}
	// And a name the decoder refuses is refused, so the check has teeth.
	if _, err := openai.DecodeChatRequest(strings.NewReader(`{"model":"m","messages":[],"no_such":null}`), lim); err == nil {
		t.Fatal("decoder accepted an unknown member")
	}
}

// TestWireSchemasMatchEncodings encodes real response values, with every
// optional part filled and empty, and checks them against the document.
func TestWireSchemasMatchEncodings(t *testing.T) {
	doc := specDoc(t)
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	text := "hi"
	lp := &openai.ChoiceLogprobs{Content: []openai.TokenLogprob{{Token: "h", Logprob: openai.Logprob(math.Inf(-1)), Bytes: []int{104},
		TopLogprobs: []openai.TopLogprob{{Token: "h", Logprob: -0.5, Bytes: []int{104}}}}}}
	usage := openai.NewUsage(3, 2)
	for _, tc := range []struct {
		name   string
		schema string
		v      any
	}{
		{"chat", "ChatCompletion", openai.ChatCompletion{ID: "chatcmpl-1", Created: 1, Model: "m", Usage: usage,
			Choices: []openai.ChatChoice{{Message: openai.ResponseMessage{Content: text}, FinishReason: "stop"}}}},
		{"chat full", "ChatCompletion", openai.ChatCompletion{ID: "chatcmpl-1", Created: 1, Model: "m", Usage: usage, SystemFingerprint: "fp",
			ConversationID: "c1", PerformanceMetrics: &openai.PerformanceMetrics{InferenceTimeMS: 1, TokensPerSecond: 2, TimeToFirstTokenMS: 3},
			Choices: []openai.ChatChoice{{Logprobs: lp, FinishReason: "tool_calls", Message: openai.ResponseMessage{ReasoningContent: "because",
				ToolCalls: []openai.ToolCall{{ID: "call_1", Type: "function", Function: openai.FunctionCall{Name: "f", Arguments: "{}"}}}}}}}},
		{"chunk", "ChatCompletionChunk", openai.ChatCompletionChunk{ID: "c", Created: 1, Model: "m",
			Choices: []openai.ChunkChoice{{Delta: openai.RoleDelta()}, {Index: 1, Delta: openai.TextDelta("x"), Logprobs: lp, FinishReason: "length"}}}},
		{"usage chunk", "ChatCompletionChunk", openai.ChatCompletionChunk{ID: "c", Created: 1, Model: "m", Usage: &usage, IncludeUsage: true,
			ConversationID: "c1", PerformanceMetrics: &openai.PerformanceMetrics{}}},
		{"null usage chunk", "ChatCompletionChunk", openai.ChatCompletionChunk{ID: "c", Created: 1, Model: "m", IncludeUsage: true,
			Choices: []openai.ChunkChoice{{Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{{ID: "call_1", Type: "function", Function: openai.FunctionDelta{Name: "f"}}}}}}}},
		{"text", "TextCompletion", openai.TextCompletion{ID: "cmpl-1", Created: 1, Model: "m", Usage: &usage,
			Choices: []openai.TextChoice{{Text: "x", FinishReason: "stop", Logprobs: &openai.TextLogprobs{Tokens: []string{"x"},
				TokenLogprobs: []openai.Logprob{openai.Logprob(math.NaN())}, TopLogprobs: []openai.TopLogprobMap{nil}, TextOffset: []int{0}}}}}},
		{"text chunk", "TextCompletion", openai.TextCompletion{ID: "cmpl-1", Created: 1, Model: "m", Stream: true, Choices: []openai.TextChoice{{Text: "x"}}}},
		{"model", "Model", openai.NewModel("org/m", 1)},
		{"model with kind", "Model", openai.Model{ID: "org/e", Created: 1, OwnedBy: "impetus", Root: "org/e", Kind: "embedding"}},
		{"embeddings", "EmbeddingList", openai.EmbeddingList{Model: "m", Vectors: [][]float32{{0.5, -1}, {0, 1}}, PromptTokens: 4}},
		{"embeddings base64", "EmbeddingList", openai.EmbeddingList{Model: "m", Vectors: [][]float32{{0.5, -1}}, Base64: true, PromptTokens: 2}},
		{"upstream model", "Model", openai.Model{ID: "org/m", Created: 1, OwnedBy: "other", Root: "org/m", Parent: "org/base"}},
		{"model list", "ModelList", openai.ModelList{Data: []openai.Model{openai.NewModel("org/m", 1)}}},
		{"empty model list", "ModelList", openai.ModelList{}},
		{"error", "OpenAIError", openai.NewError(400, "invalid_request_error", "bad").WithParam("model")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			// The checker has teeth: an extra member or a wrong type fails.
			var bad map[string]any
			json.Unmarshal(raw, &bad)
			bad["undocumented"] = 1
			if errs := checkSchema(doc, ref(tc.schema), bad, tc.schema); len(errs) == 0 {
				t.Fatal("an undocumented member passed")
			}
			var v any
			json.Unmarshal(raw, &v)
			if errs := checkSchema(doc, ref(tc.schema), v, tc.schema); len(errs) > 0 {
				t.Fatalf("%s\n%s", strings.Join(errs, "\n"), raw)
			}
		})
	}
}

// TestDocsPage serves the Swagger UI page from both paths, its assets from
// the binary, and a same-origin-only CSP.
func TestDocsPage(t *testing.T) {
	get := func(path string) *httptest.ResponseRecorder {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		route := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/api"), "/")
		if !(&API{}).docsRoutes(rec, req, route) {
			t.Fatalf("%s not routed", path)
		}
		return rec
	}
	for _, path := range []string{"/docs", "/api/docs", "/api/docs/"} {
		rec := get(path)
		csp := rec.Header().Get("Content-Security-Policy")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="swagger-ui"`) || !strings.Contains(csp, "script-src 'self';") {
			t.Fatalf("%s: %d csp=%q", path, rec.Code, csp)
		}
	}
	for _, tc := range []struct{ asset, ctype, contains string }{
		{"swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"},
		{"swagger-ui.css", "text/css", ".swagger-ui"},
		{"impetus.js", "text/javascript", "/api/docs/openapi.json"},
		{"impetus.css", "text/css", "#keybar"},
	} {
		rec := get("/docs?asset=" + tc.asset)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("asset %s: %d %q", tc.asset, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	// Every script and style the page names is one the handler serves.
	page := get("/docs").Body.String()
	for _, m := range regexp.MustCompile(`(?:src|href)="/api/docs\?asset=([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if _, ok := docsAssets[m[1]]; !ok {
			t.Errorf("page asks for %s, which is not served", m[1])
		}
	}
	for _, bad := range []string{"../docs.go", "swagger-ui.js.map", "index.html", ""} {
		if rec := get("/api/docs?asset=" + bad); rec.Code != 404 {
			t.Errorf("asset %q: %d, want 404", bad, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	(&API{}).docsRoutes(rec, httptest.NewRequest(http.MethodGet, "/api/docs/openapi.json", nil), "/docs/openapi.json")
	var doc map[string]any
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc["paths"] == nil {
		t.Fatalf("openapi.json: %d", rec.Code)
	}
}
