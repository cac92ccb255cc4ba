package manage

// modelDocOps are the /api/models operations for the OpenAPI document.
// Their bodies are built as maps in the models package, so the responses
// are described in words.
func modelDocOps() []docOp {
	id := []map[string]any{{"name": "model_id", "in": "path", "required": true,
		"description": "Model id such as mlx-community/Qwen2.5-0.5B-Instruct-4bit; the / may be sent raw or as %2F.",
		"schema":      map[string]any{"type": "string"}}}
	dl := []map[string]any{{"name": "download_id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
	return []docOp{
		docOp{method: "GET", path: "/api/models/list", tag: "Models", summary: "Loaded and on-disk models with status, size, memory and metadata",
			responses: []docResp{{200, "models, total_memory_usage_mb, available_memory_mb.", "", nil}}},
		docOp{method: "POST", path: "/api/models/load", tag: "Models", summary: "Load a model (model_id, force_reload, auto_warmup)",
			responses: []docResp{{200, "Loaded (or already loaded).", "", nil}, {400, "Malformed body.", "", nil}, {404, "No such model.", "", nil}, {501, "The engine cannot run this model's format.", "", nil}, {503, "Too many models loaded and all busy, or the model is being unloaded.", "", nil}, {507, "Not enough memory for the model.", "", nil}}},
		docOp{method: "POST", path: "/api/models/unload", tag: "Models", summary: "Unload a model (model_id, force)",
			responses: []docResp{{200, "Unloaded (without force, after running requests finished).", "", nil}, {404, "Not loaded.", "", nil}, {409, "Requests still running when the wait ran out; the model keeps serving.", "", nil}}},
		docOp{method: "POST", path: "/api/models/download", tag: "Models", summary: "Start a download from the Hugging Face hub (model_id, auto_load, force_download, revision, allow_patterns)",
			responses: []docResp{{200, "success, message, data{model_id, download_id, estimated_size_gb}.", "", nil}, {400, "Malformed body or id.", "", nil}, {507, "Not enough disk space.", "", nil}}},
		docOp{method: "GET", path: "/api/models/download/{download_id}", tag: "Models", summary: "Download progress (bytes, total, speed, ETA)", params: dl,
			responses: []docResp{{200, "The download's state.", "", nil}, {404, "Unknown download.", "", nil}}},
		docOp{method: "DELETE", path: "/api/models/download/{download_id}", tag: "Models", summary: "Cancel a download; nothing is left behind", params: dl,
			responses: []docResp{{200, "Cancelled.", "", nil}, {404, "Unknown download.", "", nil}, {409, "Already finished or cancelled.", "", nil}}},
		docOp{method: "GET", path: "/api/models/downloads", tag: "Models", summary: "All downloads of this process",
			responses: []docResp{{200, "downloads, total.", "", nil}}},
		docOp{method: "GET", path: "/api/models/discover", tag: "Models", summary: "Curated catalog with filters category, size_limit_gb and search; speeds are estimates from measured memory bandwidth",
			responses: []docResp{{200, "models, total_models, categories, hardware_compatibility.", "", nil}, {400, "Bad filter.", "", nil}}},
		docOp{method: "POST", path: "/api/models/benchmark/{model_id}", tag: "Models", summary: "Benchmark a model with real generations", params: id,
			responses: []docResp{{200, "tokens_per_second, first_token_latency_ms, samples, …", "", nil}, {404, "No such model.", "", nil}}},
		docOp{method: "GET", path: "/api/models/benchmark/{model_id}/history", tag: "Models", summary: "Earlier benchmark results", params: id,
			responses: []docResp{{200, "results.", "", nil}}},
		docOp{method: "POST", path: "/api/models/warmup/{model_id}", tag: "Models", summary: "Warm a model up", params: id,
			responses: []docResp{{200, "Warm.", "", nil}, {404, "No such model.", "", nil}}},
		docOp{method: "POST", path: "/api/models/warmup/{model_id}/benchmark", tag: "Models", summary: "Cold versus warm first-token latency", params: id,
			responses: []docResp{{200, "Cold and warm figures.", "", nil}, {404, "No such model.", "", nil}}},
		docOp{method: "GET", path: "/api/models/warmup/status", tag: "Models", summary: "Warm-up state of loaded models",
			responses: []docResp{{200, "models.", "", nil}}},
	}
}
