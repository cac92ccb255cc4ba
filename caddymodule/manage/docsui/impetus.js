// Starts Swagger UI on this server's OpenAPI document. The document and every
// operation need the API key, so the key typed here is sent as a bearer token
// with the spec fetch and preset in Swagger UI's Authorize dialog.
"use strict";
(function () {
  const specURL = "/api/docs/openapi.json";
  const keyInput = document.getElementById("key");
  const statusEl = document.getElementById("status");
  keyInput.value = sessionStorage.getItem("impetus-key") || "";

  function setState(state, text) {
    document.body.dataset.state = state;
    statusEl.textContent = text;
  }

  async function load() {
    const key = keyInput.value.trim();
    sessionStorage.setItem("impetus-key", key);
    setState("loading", "Loading the OpenAPI document…");
    const headers = key ? { Authorization: "Bearer " + key } : {};
    let spec;
    try {
      const resp = await fetch(specURL, { headers: headers });
      if (resp.status === 401 || resp.status === 403) {
        setState("needs-key", "Enter an API key to load the API description.");
        return;
      }
      if (!resp.ok) {
        setState("failed", "The OpenAPI document answered HTTP " + resp.status + ".");
        return;
      }
      spec = await resp.json();
    } catch (e) {
      setState("failed", "Could not load the OpenAPI document: " + e);
      return;
    }
    window.ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      requestInterceptor: (req) => {
        const k = sessionStorage.getItem("impetus-key");
        if (k && !req.headers.Authorization) req.headers.Authorization = "Bearer " + k;
        return req;
      },
      onComplete: () => {
        if (key) window.ui.preauthorizeApiKey("bearerAuth", key);
        setState("ready", "Loaded " + (spec.info && spec.info.version ? "version " + spec.info.version : "the API") + ".");
      },
    });
  }

  document.getElementById("load").addEventListener("click", load);
  keyInput.addEventListener("keydown", (e) => { if (e.key === "Enter") load(); });
  load();
})();
