package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
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

// TestLoadHoldsOneCopy loads packed models (random weights, a
// Qwen2.5-0.5B block shape with fewer layers and a smaller vocabulary to
// keep each file near 100 MB) and checks that the process holds one copy of
// the weights: resident memory grows by at most 1.1× the file, and the
// model's own figure (Info.WeightBytes) says what is resident. Besides
// Q4_0, the narrowest formats: Q2_K and Q3_K files (rows of 1024, whole
// super-blocks) and an MLX 3-bit folder, whose packed layouts keep each code
// at its own width.
func TestLoadHoldsOneCopy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("releasing mapped pages is Linux-only")
	}
	for _, q := range []string{"q4_0", "q2_k", "q3_k_s", "mlx3", "mlx4"} {
		t.Run(q, func(t *testing.T) { loadHoldsOneCopy(t, q) })
	}
}

func loadHoldsOneCopy(t *testing.T, q string) {
	mlx := !IsGGUFQuant(q)
	if !kernels.PackWanted(mlx) {
		t.Skipf("no packed kernels at level %q (MLX %v)", kernels.Features(), mlx)
	}
	shape := Qwen25_05B.LlamaArch()
	shape.Name, shape.Layers, shape.Vocab = "qwen0.5b-12", 12, 32000
	shape.BOS, shape.EOS = 1, []int{2}
	if q != "q4_0" {
		// Rows of whole 256-element super-blocks, so that the K-quants
		// stay K-quants (Qwen2.5-0.5B's 896 would fall back to Q4_0).
		shape.Hidden, shape.Heads, shape.Intermediate, shape.Layers = 1024, 16, 2816, 10
	}
	var (
		path string
		size int64
		m    *model.Model
		err  error
	)
	if mlx {
		path = t.TempDir()
		if err := MakeRandomModel(path, shape, q, 1); err != nil {
			t.Fatal(err)
		}
		size = folderBytes(t, path, ".safetensors")
	} else {
		path = filepath.Join(t.TempDir(), "m.gguf")
		if err := WriteRandomGGUF(path, shape, q, 1); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		size = st.Size()
	}
	debug.FreeOSMemory() // what writing the file took
	before := rssBytes(t)
	if mlx {
		m, err = model.Load(path)
	} else {
		m, err = model.LoadGGUF(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	runtime.GC()
	grown := rssBytes(t) - before
	info := m.Info()
	t.Logf("%s file %.1f MB: resident +%.1f MB after load; packed %.1f MB, released %.1f MB, reported %.1f MB",
		q, mb(size), mb(grown), mb(info.PackedBytes), mb(info.ReleasedBytes), mb(info.WeightBytes()))
	if info.PackedBytes == 0 || info.PackedBytes > size*105/100 {
		t.Errorf("%s: packed %.1f MB, want more than nothing and at most 1.05x the file's %.1f MB", q, mb(info.PackedBytes), mb(size))
	}
	if limit := size * 11 / 10; grown > limit {
		t.Errorf("resident memory grew by %.1f MB loading a %.1f MB file; want at most %.1f MB", mb(grown), mb(size), mb(limit))
	}
	if w := info.WeightBytes(); w > size*11/10 || grown > w*11/10 {
		t.Errorf("reported weight memory %.1f MB; resident growth %.1f MB, file %.1f MB", mb(w), mb(grown), mb(size))
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
	if after := rssBytes(t) - before; after > size*11/10+16<<20 {
		t.Errorf("resident memory grew by %.1f MB after decoding (file %.1f MB): released pages were read again", mb(after), mb(size))
	}
}

// folderBytes is the size of the files in dir whose names end in ext.
func folderBytes(t *testing.T, dir, ext string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
