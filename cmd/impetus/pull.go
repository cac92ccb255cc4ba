package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/catalog"
	"github.com/impetusllm/impetus/inference/hub"
)

func init() {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	fs.String("models-dir", "", "models directory to download into (default: $IMPETUS_MODELS_DIR, else the Hugging Face hub cache, as the server)")
	fs.String("endpoint", "", "hub base URL (default: $HF_ENDPOINT, else "+hub.DefaultEndpoint+")")
	fs.String("include", "", "comma-separated glob patterns of the files to fetch, e.g. '*Q4_K_M.gguf' (default: the model's weights, tokenizer and configs)")
	fs.Bool("force", false, "download every file again, even those already in the cache")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "pull",
		Usage: "<ORG/NAME>[@revision] [--models-dir <dir>] [--endpoint <url>] [--include <patterns>] [--force]",
		Short: "Downloads a model from the Hugging Face hub into the models directory",
		Long: `
Downloads a model repository from the Hugging Face hub into the models
directory, in the hub cache layout (models--ORG--NAME/blobs, snapshots, refs)
that the server scans and that POST /api/models/download writes. A running
server lists the model at once; load it with POST /api/models/load or just
send a chat request naming it.

The revision after @ is a branch, tag or commit (default: main). Each file is
verified against the hub's hash. On a terminal a progress bar shows; otherwise
a line is printed every second. Interrupted (Ctrl-C), the command keeps what
it fetched: run it again to resume where it stopped.

HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) is sent for gated or private models.

Example:
  impetus pull mlx-community/Qwen2.5-0.5B-Instruct-4bit
`,
		Flags: fs,
		Func:  cmdPull,
	})
}

func cmdPull(fl caddycmd.Flags) (int, error) {
	if fl.NArg() != 1 {
		return caddy1(fmt.Errorf("pull takes one model id, ORG/NAME[@revision]; got %d arguments", fl.NArg()))
	}
	id, revision, _ := strings.Cut(fl.Arg(0), "@")
	if revision == "" {
		revision = "main"
	}
	if err := hub.ValidateRepoID(id); err != nil {
		return caddy1(fmt.Errorf("model id: %w", err))
	}
	if err := hub.ValidateRevision(revision); err != nil {
		return caddy1(fmt.Errorf("revision: %w", err))
	}
	dir := fl.String("models-dir")
	if dir == "" {
		dir = inference.DefaultModelsDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return caddy1(fmt.Errorf("models directory: %w", err))
	}
	client := hub.NewFromEnv(dir)
	if e := fl.String("endpoint"); e != "" {
		client.Endpoint = e
	}
	var patterns []string
	for p := range strings.SplitSeq(fl.String("include"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	if entry, ok := catalog.Lookup(id); ok && len(patterns) == 0 && entry.File != "" {
		patterns = []string{entry.File}
	}
	if _, err := hub.ModelFiles(nil, patterns); err != nil && !errors.Is(err, hub.ErrNoFiles) {
		return caddy1(fmt.Errorf("--include: %w", err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressPrinter(os.Stdout, isTerminal(os.Stdout))
	fmt.Fprintf(os.Stdout, "pulling %s@%s into %s\n", id, revision, dir)
	if n := partialBytes(filepath.Join(dir, hub.RepoFolderName(id))); n > 0 && !fl.Bool("force") {
		fmt.Fprintf(os.Stdout, "resuming: %s of partial files from an interrupted pull\n", mb(n))
	}
	snap, err := client.Download(ctx, id, hub.Options{
		Revision: revision, AllowPatterns: patterns, Force: fl.Bool("force"),
		KeepPartial: true, Progress: bar.update,
	})
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stdout, "interrupted; what was fetched is kept: run the same command again to resume\n")
			return 130, nil
		}
		return caddy1(fmt.Errorf("pulling %s: %w", id, err))
	}
	fmt.Fprintf(os.Stdout, "done: %s@%s (%s, %d files, %s fetched) in %s\n",
		id, snap.Commit, mb(hub.TotalSize(snap.Selected)), len(snap.Selected), mb(snap.Fetched), snap.Dir)
	return 0, nil
}

// partialBytes sums the partly downloaded blobs an interrupted pull left.
func partialBytes(repoDir string) int64 {
	files, _ := filepath.Glob(filepath.Join(repoDir, "blobs", "*.incomplete"))
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// caddy1 is the exit status and error of a failed command.
func caddy1(err error) (int, error) { return 1, err }

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// progressPrinter shows a download's progress: a bar redrawn in place on a
// terminal, else a plain line at most every second.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu    sync.Mutex
	start time.Time
	first int64 // bytes in place when the transfer started (resumed or cached)
	last  time.Time
	p     hub.Progress
	drawn bool
}

func newProgressPrinter(w io.Writer, tty bool) *progressPrinter {
	every := time.Second
	if tty {
		every = 100 * time.Millisecond
	}
	return &progressPrinter{w: w, tty: tty, every: every, first: -1}
}

func (b *progressPrinter) update(p hub.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.first < 0 {
		b.first, b.start = p.Done, now
	}
	b.p = p
	if now.Sub(b.last) < b.every && p.Done < p.Total {
		return
	}
	b.last = now
	b.draw(now)
}

// draw prints the current state. Callers hold b.mu.
func (b *progressPrinter) draw(now time.Time) {
	p := b.p
	pct := 0.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	rate := ""
	if el := now.Sub(b.start).Seconds(); el > 0.2 {
		rate = fmt.Sprintf(" %.1f MB/s", float64(p.Done-b.first)/el/1e6)
	}
	if !b.tty {
		fmt.Fprintf(b.w, "downloaded %s of %s (%.0f%%), %d of %d files%s\n", mb(p.Done), mb(p.Total), pct, p.FilesDone, p.Files, rate)
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%% %s / %s%s   ", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, mb(p.Done), mb(p.Total), rate)
	b.drawn = true
}

// finish ends the bar's line on a terminal.
func (b *progressPrinter) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first >= 0 {
		b.draw(time.Now())
	}
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
