package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// cdp is a minimal Chrome DevTools Protocol client over one page target: it
// sends commands and records console messages, exceptions and log errors.
type cdp struct {
	t      *testing.T
	conn   *websocket.Conn
	ctx    context.Context
	mu     sync.Mutex
	nextID int
	wait   map[int]chan json.RawMessage
	errs   []string
}

func (c *cdp) readLoop() {
	for {
		_, data, err := c.conn.Read(c.ctx)
		if err != nil {
			return
		}
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID != 0 {
			c.mu.Lock()
			ch := c.wait[msg.ID]
			c.mu.Unlock()
			if ch != nil {
				if msg.Error != nil {
					ch <- append(json.RawMessage(`{"cdpError":`), append(msg.Error, '}')...)
				} else {
					ch <- msg.Result
				}
			}
			continue
		}
		var p struct {
			Type             string                `json:"type"`
			Args             []struct{ Value any } `json:"args"`
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		json.Unmarshal(msg.Params, &p)
		var problem string
		switch msg.Method {
		case "Runtime.consoleAPICalled":
			if p.Type == "error" || p.Type == "warning" || p.Type == "assert" {
				problem = fmt.Sprintf("console.%s %v", p.Type, p.Args)
			}
		case "Runtime.exceptionThrown":
			problem = "exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description
		case "Log.entryAdded":
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				problem = fmt.Sprintf("log %s (%s): %s %s", p.Entry.Level, p.Entry.Source, p.Entry.Text, p.Entry.URL)
			}
		}
		if problem != "" {
			c.mu.Lock()
			c.errs = append(c.errs, problem)
			c.mu.Unlock()
		}
	}
}

func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.wait[id] = ch
	c.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err := c.conn.Write(c.ctx, websocket.MessageText, msg); err != nil {
		c.t.Fatalf("cdp %s: %v", method, err)
	}
	select {
	case res := <-ch:
		if strings.HasPrefix(string(res), `{"cdpError"`) {
			c.t.Fatalf("cdp %s: %s", method, res)
		}
		return res
	case <-c.ctx.Done():
		c.t.Fatalf("cdp %s: %v", method, c.ctx.Err())
	}
	return nil
}

// eval runs a JavaScript expression in the page and returns its value.
func (c *cdp) eval(expr string) any {
	c.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	json.Unmarshal(c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &res)
	if res.ExceptionDetails != nil {
		c.t.Fatalf("evaluating %s: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value
}

// waitFor polls a JavaScript expression until it yields want.
func (c *cdp) waitFor(expr string, want any) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got any
	for time.Now().Before(deadline) {
		if got = c.eval(expr); fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s = %v, want %v; page errors: %v", expr, got, want, c.errs)
}

// startChromium runs headless Chromium with remote debugging and connects to
// its first page.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium installed (Debian: apt-get install chromium); skipping the docs page browser test")
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser is killed, which would fail
	// the test's own cleanup. The whole process group is killed and the
	// folder removed once it is quiet.
	profile, err := os.MkdirTemp("", "impetus-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--remote-debugging-port=0", "--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	var port string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && port == ""; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
	}
	if port == "" {
		t.Fatal("chromium did not open its debugging port")
	}
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			continue
		}
		json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		if len(targets) > 0 {
			break
		}
	}
	ws := ""
	for _, tg := range targets {
		if tg.Type == "page" {
			ws = tg.WS
		}
	}
	if ws == "" {
		t.Fatalf("no page target: %v", targets)
	}
	conn, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(32 << 20)
	c := &cdp{t: t, conn: conn, ctx: ctx, wait: map[int]chan json.RawMessage{}}
	go c.readLoop()
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		c.call(m, map[string]any{})
	}
	return c
}

// TestDocsPageInChromium loads Swagger UI in headless Chromium: the page and
// its assets are public, the spec needs the key, and Swagger UI's "Try it
// out" sends it.
func TestDocsPageInChromium(t *testing.T) {
	c := startChromium(t)
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := strings.Replace(siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, t.TempDir(), "key docs docs-secret", 1000),
		"@protected not path /api/health /api/health/*", "@protected not path /api/health /api/health/* /docs /api/docs", 1)
	s := startServer(t, cfg)
	s.waitReady(base + "/api/health")

	c.call("Page.navigate", map[string]any{"url": base + "/docs"})
	c.waitFor("document.body && document.body.dataset.state", "needs-key")
	// The 401 of the keyless spec fetch is the one expected browser error.
	c.mu.Lock()
	var rest []string
	for _, e := range c.errs {
		if !strings.Contains(e, "401") {
			rest = append(rest, e)
		}
	}
	c.errs = rest
	c.mu.Unlock()

	c.eval(`document.getElementById("key").value = "docs-secret"; document.getElementById("load").click()`)
	c.waitFor("document.body.dataset.state", "ready")
	raw := do(t, "GET", base+"/api/docs/openapi.json", "docs-secret")
	nOps := 0
	for _, item := range raw.body["paths"].(map[string]any) {
		nOps += len(item.(map[string]any))
	}
	c.waitFor("document.querySelectorAll('.swagger-ui .opblock').length", float64(nOps))
	// The key is preset in Swagger UI's Authorize dialog: the lock shows locked.
	if got := c.eval("document.querySelectorAll('.swagger-ui .authorize.locked').length"); got == float64(0) {
		t.Fatalf("Authorize button not locked after entering the key")
	}

	// Try GET /api/hardware/info through Swagger UI's Try it out / Execute.
	c.eval(`window.findOp = (method, path) => [...document.querySelectorAll(".swagger-ui .opblock.opblock-" + method)].find((e) => {
		const p = e.querySelector(".opblock-summary-path");
		return p && (p.getAttribute("data-path") || p.textContent.replace(/\u200b/g, "")) === path;
	})`)
	const op = `findOp("get", "/api/hardware/info")`
	c.eval(op + `.querySelector(".opblock-summary-control").click()`)
	c.waitFor(`!!`+op+`.querySelector(".try-out__btn")`, true)
	c.eval(op + `.querySelector(".try-out__btn").click()`)
	c.waitFor(`!!`+op+`.querySelector(".btn.execute")`, true)
	c.eval(op + `.querySelector(".btn.execute").click()`)
	c.waitFor(`(() => { const s = `+op+`.querySelector(".live-responses-table tbody .response-col_status"); return s ? s.textContent.trim().slice(0, 3) : ""; })()`, "200")
	if out := c.eval(op + `.querySelector(".live-responses-table").textContent`).(string); !strings.Contains(out, "total_cores") {
		t.Fatalf("try-it output: %s", out)
	}

	if dir := os.Getenv("IMPETUS_SCREENSHOT_DIR"); dir != "" {
		var shot struct {
			Data string `json:"data"`
		}
		json.Unmarshal(c.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
		png, _ := base64.StdEncoding.DecodeString(shot.Data)
		os.WriteFile(filepath.Join(dir, "docs.png"), png, 0o644)
	}
	// /api/docs is the same page; the key is in sessionStorage.
	c.call("Page.navigate", map[string]any{"url": base + "/api/docs"})
	c.waitFor("document.body && document.body.dataset.state", "ready")
	c.waitFor("document.querySelectorAll('.swagger-ui .opblock').length", float64(nOps))
	c.mu.Lock()
	defer c.mu.Unlock()
	var unexpected []string
	for _, e := range c.errs {
		unexpected = append(unexpected, e)
	}
	if len(unexpected) > 0 {
		t.Fatalf("browser console errors:\n%s", strings.Join(unexpected, "\n"))
	}
}
