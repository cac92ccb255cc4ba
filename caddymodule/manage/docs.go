package manage

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/impetusllm/impetus/caddymodule/buildinfo"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/caddymodule/pool"
	swaggerFiles "github.com/swaggo/files/v2"
)

// docsRoutes serves the OpenAPI document and the docs page. The page answers
// both /api/docs and /docs: API.ServeHTTP lets /docs in, and it arrives here
// as route "/docs" like /api/docs does.
func (h *API) docsRoutes(w http.ResponseWriter, r *http.Request, route string) bool {
	switch route {
	case "/docs/openapi.json":
		httperr.Only(w, r, http.MethodGet, serveOpenAPI)
	case "/docs":
		httperr.Only(w, r, http.MethodGet, serveDocsPage)
	default:
		return false
	}
	return true
}

// openAPIDocument is the spec, built once from the operation table.
var openAPIDocument = sync.OnceValues(func() ([]byte, error) {
	doc, err := buildOpenAPI()
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
})

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	body, err := openAPIDocument()
	if err != nil {
		httperr.WriteAPI(w, http.StatusInternalServerError, "could not build the OpenAPI document")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// docsUI holds our page and its start script; Swagger UI itself comes from
// github.com/swaggo/files/v2, which embeds its release files.
//
//go:embed docsui
var docsUI embed.FS

// docsAssets maps the names the page asks for (?asset=NAME) to files. The
// assets ride on the page's own path as a query because the example
// Caddyfile leaves exactly /docs and /api/docs open, and a browser loading
// <script src> cannot send the API key.
var docsAssets = map[string]struct {
	fs          fs.FS
	file, ctype string
}{
	"swagger-ui-bundle.js": {swaggerFiles.FS, "swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
	"swagger-ui.css":       {swaggerFiles.FS, "swagger-ui.css", "text/css; charset=utf-8"},
	"impetus.js":           {docsUI, "docsui/impetus.js", "text/javascript; charset=utf-8"},
	"impetus.css":          {docsUI, "docsui/impetus.css", "text/css; charset=utf-8"},
}

// docsCSP admits scripts, styles and requests from this origin only, plus
// the data: images Swagger UI draws its icons with.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func serveDocsPage(w http.ResponseWriter, r *http.Request) {
	name, file, ctype := "index.html", "docsui/index.html", "text/html; charset=utf-8"
	var fsys fs.FS = docsUI
	if q := r.URL.Query(); q.Has("asset") {
		a, ok := docsAssets[q.Get("asset")]
		if !ok {
			httperr.WriteAPI(w, http.StatusNotFound, "no such docs asset: "+q.Get("asset"))
			return
		}
		name, fsys, file, ctype = q.Get("asset"), a.fs, a.file, a.ctype
	}
	body, err := fs.ReadFile(fsys, file)
	if err != nil {
		httperr.WriteAPI(w, http.StatusInternalServerError, "docs asset "+name+" missing from the binary")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Security-Policy", docsCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(body)
}

// docsAssetParam and docsPageResponses describe the docs page's operations.
var (
	docsAssetParam = []map[string]any{{"name": "asset", "in": "query", "required": false,
		"description": "A script or style of the page instead of the page itself.",
		"schema":      map[string]any{"type": "string", "enum": []any{"swagger-ui-bundle.js", "swagger-ui.css", "impetus.js", "impetus.css"}}}}
	docsPageResponses = []docResp{{200, "The docs page, or the asset asked for.", "text/html; charset=utf-8", textPlain},
		{404, "No such asset.", "", nil}}
)

// docOp is one operation of the API as the spec describes it.
type docOp struct {
	method, path, tag, summary, description string
	// public operations are left open by the example Caddyfile.
	public    bool
	request   any // a value of the request body's type; nil for none
	responses []docResp
	openAI    bool // errors use the OpenAI shape
	params    []map[string]any
}

// docResp is one response: body is a value of the encoded type, or a schema
// (map) when the body is not JSON of a Go type.
type docResp struct {
	status      int
	description string
	contentType string
	body        any
}

// Documentation-only shapes of bodies the health handlers build as maps.
type (
	healthBody struct {
		Status        string  `json:"status"`
		Timestamp     string  `json:"timestamp"`
		Version       string  `json:"version"`
		UptimeSeconds float64 `json:"uptime_seconds"`
	}
	liveBody struct {
		Alive         bool    `json:"alive"`
		Timestamp     string  `json:"timestamp"`
		UptimeSeconds float64 `json:"uptime_seconds"`
		LastHeartbeat string  `json:"last_heartbeat"`
	}
	statusBody struct {
		Status        string                    `json:"status"`
		Timestamp     string                    `json:"timestamp"`
		Version       string                    `json:"version"`
		UptimeSeconds float64                   `json:"uptime_seconds"`
		Checks        map[string]bool           `json:"checks"`
		Components    map[string]map[string]any `json:"components"`
	}
)

var (
	textPlain = map[string]any{"type": "string"}
	anyObject = map[string]any{"type": "object"}
)

// docOps lists every route the handlers serve. TestOpenAPICoversRoutes keeps
// it in step with the routers' code.
var docOps = append([]docOp{
	{method: "GET", path: "/api/health", tag: "Health", summary: "Liveness of the server", public: true,
		responses: []docResp{{200, "The scheduler loop is alive.", "", healthBody{}}, {503, "The scheduler loop stalled.", "", healthBody{}}}},
	{method: "GET", path: "/api/health/ready", tag: "Health", summary: "Readiness probe", public: true,
		description: "Ready when memory use is under the configured ceiling, the engine runs and (if required by the config) a model is loaded. mlx_available reports the engine that runs MLX-format models.",
		responses:   []docResp{{200, "Ready.", "", readiness{}}, {503, "Not ready; message names the failing checks.", "", readiness{}}}},
	{method: "GET", path: "/api/health/live", tag: "Health", summary: "Liveness probe with the last heartbeat", public: true,
		responses: []docResp{{200, "Alive.", "", liveBody{}}, {503, "The scheduler loop stalled.", "", liveBody{}}}},
	{method: "GET", path: "/api/health/status", tag: "Health", summary: "Component status (engine, models, system)", public: true,
		responses: []docResp{{200, "Healthy.", "", statusBody{}}, {503, "Not ready.", "", statusBody{}}}},
	{method: "GET", path: "/api/health/metrics", tag: "Metrics", summary: "Prometheus metrics (the seed's path)", public: true,
		description: "Same body as /api/metrics: Prometheus text exposition format 0.0.4 with the impetus_* series.",
		responses:   []docResp{{200, "Prometheus text.", "text/plain; version=0.0.4", textPlain}}},
	{method: "GET", path: "/api/metrics", tag: "Metrics", summary: "Prometheus metrics",
		description: "impetus_requests_total (and impetus_http_requests_total by endpoint, model and status), impetus_tokens_generated_total, impetus_prompt_tokens_total and impetus_completion_tokens_total (by model and key id), latency, time-to-first-token and inter-token histograms, host CPU and memory gauges, loaded models and their load times, uptime, build info and the performance mode.",
		responses:   []docResp{{200, "Prometheus text.", "text/plain; version=0.0.4", textPlain}}},
	{method: "GET", path: "/api/hardware/info", tag: "Hardware", summary: "Host hardware and engine facts",
		description: "Fields the host cannot report are null. chip_type, chip_variant, mlx_version and python_version are Apple/MLX keys of the seed API and are always null: the engine is Go code (on the CPU, or an NVIDIA GPU through CUDA). engine.device and engine.gpus tell where the loaded models run. gpu.compute_units, gpu.metal_support and gpu.unified_memory are Apple-only and null.",
		responses:   []docResp{{200, "Hardware facts.", "", hardwareInfo{}}}},
	{method: "GET", path: "/api/hardware/metrics", tag: "Hardware", summary: "Live hardware and process metrics",
		description: "CPU usage is measured since the previous call of this endpoint (over 200 ms on the first). metal is the seed's Apple GPU object and is always null; NVIDIA GPUs appear under gpus when NVML (libnvidia-ml.so.1) or nvidia-smi is there, with utilization and memory in use; a reading the driver cannot give is null. engine.gpus gives the GPU memory the engine's models hold: weights, KV caches and activations.",
		responses:   []docResp{{200, "Metrics.", "", hardwareMetricsBody{}}}},
	{method: "GET", path: "/api/hardware/performance-mode", tag: "Hardware", summary: "Current performance mode",
		responses: []docResp{{200, "The mode and what it sets.", "", pool.PerformanceState{}}}},
	{method: "POST", path: "/api/hardware/performance-mode", tag: "Hardware", summary: "Set the performance mode",
		description: "efficiency uses half of the configured compute threads (default: the CPUs this process may use), balanced and performance all of them. The change takes effect for the next kernel call and lasts until changed again or until a config reload that changes performance_mode or threads.",
		request:     performanceModeRequest{Mode: pool.ModeBalanced},
		responses:   []docResp{{200, "The mode now in force.", "", pool.PerformanceState{}}, {400, "Unknown mode or malformed body.", "", nil}}},
	{method: "GET", path: "/api/docs", tag: "Docs", summary: "Interactive API documentation (Swagger UI, HTML)", public: true,
		description: "Swagger UI served from the binary. With ?asset=NAME it answers one of the page's scripts or styles instead.",
		params:      docsAssetParam, responses: docsPageResponses},
	{method: "GET", path: "/docs", tag: "Docs", summary: "Interactive API documentation (Swagger UI, HTML), same page as /api/docs", public: true,
		params: docsAssetParam, responses: docsPageResponses},
	{method: "GET", path: "/api/docs/openapi.json", tag: "Docs", summary: "This OpenAPI document", public: true,
		responses: []docResp{{200, "OpenAPI 3.1 document.", "", anyObject}}},
	{method: "POST", path: "/v1/chat/completions", tag: "OpenAI", summary: "Chat completion (OpenAI-compatible)", openAI: true,
		description: "Fields Impetus accepts but does not implement are refused with 400 naming the field. With stream true the body is server-sent events: data lines carrying ChatCompletionChunk objects, then data: [DONE].",
		request:     openai.ChatRequest{},
		responses: []docResp{{200, "The completion, or its event stream.", "", openai.ChatCompletion{}},
			{400, "Invalid request or unsupported field.", "", nil}, {403, "The API key may not use this model.", "", nil},
			{404, "No such model.", "", nil}, {413, "Body too large.", "", nil}, {503, "The model was unloaded or the request cancelled.", "", nil}}},
	{method: "POST", path: "/v1/completions", tag: "OpenAI", summary: "Text completion (OpenAI-compatible)", openAI: true,
		description: "With stream true the body is server-sent events of TextCompletion chunks, then data: [DONE].",
		request:     openai.CompletionRequest{},
		responses: []docResp{{200, "The completion, or its event stream.", "", openai.TextCompletion{}},
			{400, "Invalid request or unsupported field.", "", nil}, {403, "The API key may not use this model.", "", nil},
			{404, "No such model.", "", nil}, {413, "Body too large.", "", nil}, {503, "The model was unloaded or the request cancelled.", "", nil}}},
	{method: "POST", path: "/v1/embeddings", tag: "OpenAI", summary: "Embeddings (OpenAI-compatible)", openAI: true,
		description: "Embeds each input (up to 2048 strings or token-id arrays, none empty) with an embedding model, in input order. encoding_format base64 gives each vector as the base64 of its little-endian float32 bytes. An input longer than the model's maximum is a 400 with its length, unless the server's embeddings_truncate option is on. dimensions shortens the vectors (the leading entries, renormalized) for a Matryoshka-trained model (its config lists matryoshka_dims or its model card says Matryoshka); for other models any value but the full size is a 400. A chat model here, or an embedding model at /v1/chat/completions or /v1/completions, is a 400 that says which kind it is. Usage counts prompt tokens, which per-key token budgets charge.",
		request:     openai.EmbeddingRequest{},
		responses: []docResp{{200, "The embeddings.", "", openai.EmbeddingList{}},
			{400, "Invalid input, too long an input, unsupported dimensions, or a chat model.", "", nil}, {403, "The API key may not use this model.", "", nil},
			{404, "No such model.", "", nil}, {413, "Body too large.", "", nil}, {503, "The model was unloaded or the request cancelled.", "", nil}}},
	{method: "GET", path: "/v1/models", tag: "OpenAI", summary: "List local models", openAI: true,
		responses: []docResp{{200, "Models available locally.", "", openai.ModelList{}}}},
	{method: "GET", path: "/v1/models/{model}", tag: "OpenAI", summary: "One model", openAI: true,
		params:    []map[string]any{{"name": "model", "in": "path", "required": true, "description": "Model id such as mlx-community/Qwen3-0.6B-4bit; the / may be sent raw or as %2F.", "schema": map[string]any{"type": "string"}}},
		responses: []docResp{{200, "The model.", "", openai.Model{}}, {400, "Malformed id.", "", nil}, {404, "No such model.", "", nil}}},
	{method: "GET", path: "/socket.io/", tag: "Events", summary: "Socket.IO event stream (Engine.IO v4 polling and websocket)",
		description: "Speak Socket.IO v5 over Engine.IO v4 (socket.io-client 4.x) to receive model_status, hardware_metrics, download_progress and inference_stats events. A client that sends no subscription gets every event; after emit('subscribe', room) with room models, hardware, downloads or inference (or {room: name}) it gets only the events of the rooms it joined; emit('unsubscribe', room) leaves one. Long-polling uses GET and POST; websocket upgrades answer 101. Send the API key in the Socket.IO handshake, io(url, {auth: {token: KEY}}) (or auth.Authorization 'Bearer KEY'), which browsers can do over WebSocket; a missing or wrong key is refused with a connect_error, and a key restricted to models hears only about those models. Keys in the URL are ignored.",
		params:      []map[string]any{{"name": "EIO", "in": "query", "required": true, "schema": map[string]any{"const": "4"}}, {"name": "transport", "in": "query", "required": true, "schema": map[string]any{"enum": []any{"polling", "websocket"}}}},
		responses:   []docResp{{200, "Engine.IO packets (polling).", "text/plain; charset=UTF-8", textPlain}, {101, "Switched to websocket.", "-", nil}, {400, "Bad handshake or unknown session.", "-", nil}}},
	{method: "POST", path: "/socket.io/", tag: "Events", summary: "Socket.IO long-polling upload",
		params:    []map[string]any{{"name": "EIO", "in": "query", "required": true, "schema": map[string]any{"const": "4"}}, {"name": "sid", "in": "query", "required": true, "schema": map[string]any{"type": "string"}}},
		responses: []docResp{{200, "Packets accepted (body ok).", "text/html", textPlain}, {400, "Bad packet or unknown session.", "-", nil}}},
}, modelDocOps()...)

// errorStatuses every protected operation may answer, besides its own.
var commonErrors = []docResp{
	{401, "Missing or invalid API key.", "", nil},
	{403, "The API key may not use this model, or the operation changes server state and needs an admin key.", "", nil},
	{405, "Method not allowed.", "", nil},
	{429, "Rate limit exceeded; see Retry-After.", "", nil},
	{500, "Internal error.", "", nil},
}

// buildOpenAPI assembles the document.
func buildOpenAPI() (map[string]any, error) {
	g := newSchemaGen()
	apiErr := g.Of(httperr.APIError{})
	oaErr := g.Of(&openai.Error{})
	if r, ok := oaErr["anyOf"].([]any); ok {
		oaErr = r[0].(map[string]any) // the envelope, never null
	}
	rateHeaders := map[string]any{
		"X-RateLimit-Limit":     map[string]any{"$ref": "#/components/headers/X-RateLimit-Limit"},
		"X-RateLimit-Remaining": map[string]any{"$ref": "#/components/headers/X-RateLimit-Remaining"},
		"X-RateLimit-Reset":     map[string]any{"$ref": "#/components/headers/X-RateLimit-Reset"},
	}
	paths := map[string]any{}
	for _, op := range docOps {
		o := map[string]any{"tags": []any{op.tag}, "summary": op.summary, "operationId": operationID(op.method, op.path)}
		if op.description != "" {
			o["description"] = op.description
		}
		if op.public {
			o["security"] = []any{map[string]any{}, map[string]any{"bearerAuth": []any{}}}
		}
		if len(op.params) > 0 {
			ps := make([]any, len(op.params))
			for i, p := range op.params {
				ps[i] = p
			}
			o["parameters"] = ps
		}
		if op.request != nil {
			media := map[string]any{"schema": g.Of(op.request)}
			if ex := requestExample(op); ex != nil {
				media["example"] = ex
			}
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": media}}
		}
		errSchema := apiErr
		if op.openAI {
			errSchema = oaErr
		}
		resps := map[string]any{}
		all := append(append([]docResp{}, op.responses...), commonErrors...)
		for _, r := range all {
			code := strconv.Itoa(r.status)
			if _, dup := resps[code]; dup {
				continue
			}
			resp := map[string]any{"description": r.description}
			switch {
			case r.contentType == "-":
			case r.body == nil:
				resp["content"] = map[string]any{"application/json": map[string]any{"schema": errSchema}}
			default:
				ct := r.contentType
				if ct == "" {
					ct = "application/json"
				}
				schema, isSchema := r.body.(map[string]any)
				if !isSchema {
					schema = g.Of(r.body)
				}
				content := map[string]any{ct: map[string]any{"schema": schema}}
				if op.openAI && op.method == "POST" && r.status == 200 {
					chunk := g.Of(openai.ChatCompletionChunk{})
					if op.path == "/v1/completions" {
						chunk = g.Of(openai.TextCompletion{})
					}
					content["text/event-stream"] = map[string]any{"schema": map[string]any{"type": "string",
						"description": "Server-sent events: each `data:` line holds one chunk object (see x-chunk-schema), the last is `data: [DONE]`."},
						"x-chunk-schema": chunk}
				}
				resp["content"] = content
			}
			if r.status == 429 {
				h := map[string]any{"Retry-After": map[string]any{"description": "Seconds until a request may succeed.", "schema": map[string]any{"type": "integer"}}}
				for k, v := range rateHeaders {
					h[k] = v
				}
				resp["headers"] = h
			} else if r.status == 200 && !op.public {
				resp["headers"] = rateHeaders
			}
			resps[code] = resp
		}
		o["responses"] = resps
		item, _ := paths[op.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = o
	}
	if g.err != nil {
		return nil, g.err
	}
	intHeader := func(d string) map[string]any {
		return map[string]any{"description": d, "schema": map[string]any{"type": "integer"}}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Impetus API",
			"version":     buildinfo.Version(),
			"description": "OpenAI-compatible LLM server with model management, hardware monitoring and metrics. Every endpoint takes `Authorization: Bearer <key>` unless the operator leaves it open (the example Caddyfile leaves /api/health* and the docs pages /docs and /api/docs open; the OpenAPI document itself needs the key). Errors under /v1 use the OpenAI shape, elsewhere `{error, type, details[], timestamp}`.",
			"license":     map[string]any{"name": "See the project repository", "identifier": "NOASSERTION"},
		},
		"tags": []any{
			map[string]any{"name": "OpenAI", "description": "OpenAI-compatible API"},
			map[string]any{"name": "Health"}, map[string]any{"name": "Metrics"}, map[string]any{"name": "Hardware"},
			map[string]any{"name": "Events"}, map[string]any{"name": "Docs"},
		},
		"security": []any{map[string]any{"bearerAuth": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "description": "An API key from the server's configuration."}},
			"headers": map[string]any{
				"X-RateLimit-Limit":     intHeader("Requests allowed per window."),
				"X-RateLimit-Remaining": intHeader("Requests left in the window."),
				"X-RateLimit-Reset":     intHeader("Seconds until the window resets."),
			},
			// Statuses of the seed's model management, referenced by those
			// operations: memory too small for a model, and features a build lacks.
			"responses": map[string]any{
				"InsufficientStorage": map[string]any{"description": "507: not enough memory (or disk) for the model.", "content": map[string]any{"application/json": map[string]any{"schema": apiErr}}},
				"NotImplemented":      map[string]any{"description": "501: the operation is not available in this build or for this model format.", "content": map[string]any{"application/json": map[string]any{"schema": apiErr}}},
			},
		},
	}, nil
}

// operationID makes a stable id such as getApiHardwareInfo.
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '-' || r == '.' || r == '{' || r == '}' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// requestExample is a small body the docs page pre-fills.
func requestExample(op docOp) any {
	switch op.path {
	case "/v1/chat/completions":
		return map[string]any{"model": "mlx-community/Qwen3-0.6B-4bit", "messages": []any{map[string]any{"role": "user", "content": "Hello!"}}, "max_tokens": 32}
	case "/v1/completions":
		return map[string]any{"model": "mlx-community/Qwen3-0.6B-4bit", "prompt": "Once upon a time", "max_tokens": 32}
	case "/v1/embeddings":
		return map[string]any{"model": "sentence-transformers/all-MiniLM-L6-v2", "input": []any{"The food was delicious.", "The service was slow."}}
	}
	return op.request
}
