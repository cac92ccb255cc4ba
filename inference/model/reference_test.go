package model

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// reference is the part of a fixture's reference.json these tests use.
type reference struct {
	PromptIDs  []int32        `json:"prompt_ids"`
	PromptTopK [][][2]float64 `json:"prompt_topk"`
	LastLogits []float64      `json:"last_logits"`
	GreedyIDs  []int32        `json:"greedy_ids"`
	GreedyTopK [][][2]float64 `json:"greedy_topk"`
	Chat       struct {
		PromptIDs []int32 `json:"prompt_ids"`
		ReplyIDs  []int32 `json:"reply_ids"`
	} `json:"chat"`
	Arch         string `json:"arch"`
	Quant        string `json:"quant"`
	DType        string `json:"dtype"`
	TrainedSteps int    `json:"trained_steps"`
}

var fixtureMu sync.Mutex

// fixtureRoot returns the unpacked top folder of a shared fixture archive.
// The dev-trained-more-{a,b} archives both unpack to "dev-trained-more", which
// testutil.Fixture (it expects the folder to be named after the archive) does
// not handle, so this unpacks by itself, into a folder of its own.
func fixtureRoot(t *testing.T, archive string) string {
	t.Helper()
	src := testutil.SharedPath(t, "fixtures", archive+".tar.xz")
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	dst := filepath.Join(os.TempDir(), "impetus-model-fixtures", archive)
	if _, err := os.Stat(filepath.Join(dst, ".done")); err != nil {
		os.RemoveAll(dst)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xJf", src, "-C", dst).CombinedOutput(); err != nil {
			t.Fatalf("unpacking %s: %v: %s", src, err, out)
		}
		if err := os.WriteFile(filepath.Join(dst, ".done"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			return filepath.Join(dst, e.Name())
		}
	}
	t.Fatalf("%s unpacked to no folder", src)
	return ""
}

// fixtureModels lists the model folders of an archive.
func fixtureModels(t *testing.T, archive string) []string {
	root := fixtureRoot(t, archive)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "reference.json")); err == nil {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	sort.Strings(dirs)
	return dirs
}

func loadReference(t *testing.T, dir string) reference {
	return readJSON[reference](t, filepath.Join(dir, "reference.json"))
}

// readJSON decodes the JSON file at path (a test's reference) or fails.
func readJSON[T any](t *testing.T, path string) T {
	t.Helper()
	var v T
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func logSoftmax(logits []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - lse
	}
	return out
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// checkTopK compares our log-probabilities with the reference's top-k list
// and returns the largest difference.
func checkTopK(t *testing.T, what string, logits []float32, ref [][2]float64, tol float64) float64 {
	t.Helper()
	lp := logSoftmax(logits)
	worst := 0.0
	for _, e := range ref {
		d := math.Abs(lp[int(e[0])] - e[1])
		worst = math.Max(worst, d)
		if d > tol {
			t.Errorf("%s: logprob of token %d is %.5f, reference %.5f (tolerance %g)", what, int(e[0]), lp[int(e[0])], e[1], tol)
		}
	}
	// No token outside the reference list may beat its best entry.
	top := lp[argmax(logits)]
	if top > ref[0][1]+tol {
		t.Errorf("%s: our best token %d has logprob %.5f, above the reference's best %.5f", what, argmax(logits), top, ref[0][1])
	}
	return worst
}

var fixtureArchives = []struct {
	name   string
	models int
}{
	{"dev-random", 21},
	{"dev-trained", 3},
	{"dev-trained-more-a", 9},
	{"dev-trained-more-b", 9},
}

func TestReferenceFixtures(t *testing.T) {
	for _, a := range fixtureArchives {
		t.Run(a.name, func(t *testing.T) {
			dirs := fixtureModels(t, a.name)
			if len(dirs) != a.models {
				t.Errorf("%d model folders, want %d", len(dirs), a.models)
			}
			for _, dir := range dirs {
				t.Run(filepath.Base(dir), func(t *testing.T) { checkReference(t, dir) })
			}
		})
	}
}

func checkReference(t *testing.T, dir string) { checkReferenceTol(t, dir, 0) }

// checkReferenceTol checks a model against its transformers reference; a
// tolerance above 0 replaces the default one (0.03 in log-probability, 0.005
// for float32 models) and waives the exact greedy ids of trained models.
func checkReferenceTol(t *testing.T, dir string, tolerance float64) {
	checkReferenceOn(t, dir, tolerance, nil)
}

// checkReferenceOn is checkReferenceTol with place, when not nil, called on
// the loaded model first (to move it to a GPU, or to choose its KV
// storage). It returns the worst log-probability difference seen.
func checkReferenceOn(t *testing.T, dir string, tolerance float64, place func(*testing.T, *Model)) float64 {
	ref := loadReference(t, dir)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if place != nil {
		place(t, m)
	}
	tol := 3e-2
	if ref.Quant == "none" && ref.DType == "float32" {
		tol = 5e-3
	}
	trained := ref.TrainedSteps > 0
	if tolerance > 0 {
		tol, trained = tolerance, false
	}
	n := len(ref.PromptIDs)
	out := [][]float32{nil}
	worst := 0.0

	// Whole prompt at once.
	c := m.NewKVCache(n + len(ref.GreedyIDs) + 1)
	if err := m.Forward([]SeqBatch{{Tokens: ref.PromptIDs, Cache: c, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	worst = math.Max(worst, checkTopK(t, "prefill, last position", out[0], ref.PromptTopK[n-1], tol))
	var maxLogitDiff float64
	for i, v := range ref.LastLogits {
		maxLogitDiff = math.Max(maxLogitDiff, math.Abs(float64(out[0][i])-v))
	}
	if maxLogitDiff > tol*4 {
		t.Errorf("last_logits differ by up to %g", maxLogitDiff)
	}

	// Token by token through the cache: every prompt position.
	c2 := m.NewKVCache(n + len(ref.GreedyIDs) + 1)
	for i, tok := range ref.PromptIDs {
		if err := m.Forward([]SeqBatch{{Tokens: []int32{tok}, Cache: c2, WantLogits: true}}, out); err != nil {
			t.Fatal(err)
		}
		worst = math.Max(worst, checkTopK(t, "position "+strconv.Itoa(i), out[0], ref.PromptTopK[i], tol))
	}

	// Greedy continuation, feeding the reference's choice so positions stay aligned.
	for i, want := range ref.GreedyIDs {
		worst = math.Max(worst, checkTopK(t, "greedy step "+strconv.Itoa(i), out[0], ref.GreedyTopK[i], tol))
		if got := argmax(out[0]); got != want {
			lp := logSoftmax(out[0])
			if trained || lp[got]-lp[want] > tol {
				t.Errorf("greedy step %d: token %d, reference %d (logprob gap %.4g)", i, got, want, lp[got]-lp[want])
			}
		}
		if err := m.Forward([]SeqBatch{{Tokens: []int32{want}, Cache: c2, WantLogits: true}}, out); err != nil {
			t.Fatal(err)
		}
	}

	// Trained models must also reproduce the greedy chat reply exactly.
	if trained {
		cc := m.NewKVCache(len(ref.Chat.PromptIDs) + len(ref.Chat.ReplyIDs) + 1)
		tokens := ref.Chat.PromptIDs
		var got []int32
		for range ref.Chat.ReplyIDs {
			if err := m.Forward([]SeqBatch{{Tokens: tokens, Cache: cc, WantLogits: true}}, out); err != nil {
				t.Fatal(err)
			}
			next := argmax(out[0])
			got = append(got, next)
			tokens = []int32{next}
		}
		if !equalIDs(got, ref.Chat.ReplyIDs) {
			t.Errorf("chat reply %v, reference %v", got, ref.Chat.ReplyIDs)
		}
	}
	t.Logf("%s: worst logprob difference %.2g, last logits %.2g (tolerance %g)", filepath.Base(dir), worst, maxLogitDiff, tol)
	return worst
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
