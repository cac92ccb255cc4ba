package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
)

// rssBytes reads the process's resident memory (VmRSS).
func rssBytes(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestLoadHoldsOneCopy loads a packed Q4_0 model (random weights, a
// Qwen2.5-0.5B block shape with fewer layers and a smaller vocabulary to
// keep the file near 100 MB) and checks that the process holds one copy of
// the weights: resident memory grows by at most 1.1× the file, and the
// model's own figure (Info.WeightBytes) says what is resident.
func TestLoadHoldsOneCopy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("releasing mapped pages is Linux-only")
	}
	if !kernels.PackWanted(false) {
		t.Skipf("no packed kernels at level %q", kernels.Features())
	}
	shape := Qwen25_05B.LlamaArch()
	shape.Name, shape.Layers, shape.Vocab = "qwen0.5b-12", 12, 32000
	shape.BOS, shape.EOS = 1, []int{2}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteRandomGGUF(path, shape, "q4_0", 1); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := rssBytes(t)
	m, err := model.LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	runtime.GC()
	grown := rssBytes(t) - before
	info := m.Info()
	t.Logf("file %.1f MB: resident +%.1f MB after load; packed %.1f MB, released %.1f MB, reported %.1f MB",
		mb(st.Size()), mb(grown), mb(info.PackedBytes), mb(info.ReleasedBytes), mb(info.WeightBytes()))
	if limit := st.Size() * 11 / 10; grown > limit {
		t.Errorf("resident memory grew by %.1f MB loading a %.1f MB file; want at most %.1f MB", mb(grown), mb(st.Size()), mb(limit))
	}
	if w := info.WeightBytes(); w > st.Size()*11/10 || grown > w*11/10 {
		t.Errorf("reported weight memory %.1f MB; resident growth %.1f MB, file %.1f MB", mb(w), mb(grown), mb(st.Size()))
	}
	// Decoding reads only the packed copy: the released pages stay out.
	c := m.NewKVCache(64)
	logits := make([][]float32, 1)
	for i := 0; i < 8; i++ {
		if err := m.Forward([]model.SeqBatch{{Tokens: []int32{int32(100 + 37*i)}, Cache: c, WantLogits: true}}, logits); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	if after := rssBytes(t) - before; after > st.Size()*11/10+16<<20 {
		t.Errorf("resident memory grew by %.1f MB after decoding (file %.1f MB): released pages were read again", mb(after), mb(st.Size()))
	}
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
