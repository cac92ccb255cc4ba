package model

import (
	"errors"
	"math"
	"testing"
)

// TestCopyPrefixAndGrow checks the methods the scheduler sizes and shares
// caches with: a cache that starts from a copied prefix continues exactly
// like the original, and Grow respects MaxLen.
func TestCopyPrefixAndGrow(t *testing.T) {
	dir := testFixture(t, "dev-random", "qwen2-float32")
	ref := loadReference(t, dir)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := ref.PromptIDs
	src := m.NewKVCache(64)
	out := [][]float32{nil}
	if err := m.Forward([]SeqBatch{{Tokens: p, Cache: src, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	full := append([]float32(nil), out[0]...)

	dst := m.NewKVCache(len(p))
	dst.Grow(1000)
	if dst.Capacity() != len(p) {
		t.Errorf("Grow past MaxLen gave capacity %d, want %d", dst.Capacity(), len(p))
	}
	if err := dst.CopyPrefix(src, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]SeqBatch{{Tokens: p[4:], Cache: dst, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, "after a copied prefix", out[0], full)

	if err := dst.CopyPrefix(src, src.Len()+1); err == nil {
		t.Error("copying more tokens than the source holds succeeded")
	}
	other, err := Load(testFixture(t, "dev-random", "qwen3-float32"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.NewKVCache(64).CopyPrefix(src, 2); err == nil {
		t.Error("copying from another model's cache succeeded")
	}
	dst.SetMaxLen(1)
	if dst.MaxLen() < dst.Len() || dst.MaxLen() < dst.Capacity() {
		t.Errorf("SetMaxLen shrank below the stored tokens: max %d, len %d", dst.MaxLen(), dst.Len())
	}
	if m.KVTokenBytes() != int64(m.Config.Layers*m.Config.KVHeads*m.Config.HeadDim*2*4) {
		t.Errorf("KVTokenBytes = %d", m.KVTokenBytes())
	}
}

// TestKVQ8Cache checks q8_0 caches where the scheduler shares them: a
// cache that starts from a copied prefix, or is truncated to one, continues
// exactly like the original (the blocks are per token, so a prefix is
// self-contained); storages do not mix; the budget counts 34 bytes per 32
// values; and a head size that is not a multiple of 32 keeps f16.
func TestKVQ8Cache(t *testing.T) {
	dir := testFixture(t, "dev-random", "qwen3-float32") // head size 32
	ref := loadReference(t, dir)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.SetKVStorage(KVQ8); err != nil {
		t.Fatal(err)
	}
	p := ref.PromptIDs
	src := m.NewKVCache(64)
	out := [][]float32{nil}
	if err := m.Forward([]SeqBatch{{Tokens: p, Cache: src, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	full := append([]float32(nil), out[0]...)

	dst := m.NewKVCache(64)
	if err := dst.CopyPrefix(src, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]SeqBatch{{Tokens: p[4:], Cache: dst, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	sameLogits(t, "q8_0 after a copied prefix", out[0], full)

	if err := src.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]SeqBatch{{Tokens: p[3:], Cache: src, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	sameLogits(t, "q8_0 after truncation", out[0], full)

	if err := m.SetKVStorage(KVF16); err != nil {
		t.Fatal(err)
	}
	half := m.NewKVCache(64)
	if err := half.CopyPrefix(src, 2); err == nil {
		t.Error("copying a q8_0 cache into an f16 one succeeded")
	}
	if err := m.SetKVStorage(KVQ8); err != nil {
		t.Fatal(err)
	}
	kvDim := m.Config.KVHeads * m.Config.HeadDim
	if got, want := m.KVTokenBytes(), int64(m.Config.Layers*2*kvDim/32*34); got != want {
		t.Errorf("q8_0 KVTokenBytes = %d, want %d", got, want)
	}

	other, err := Load(testFixture(t, "dev-random", "qwen2-float32")) // head size 16
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.SetKVStorage(KVQ8); !errors.Is(err, ErrKVQ8HeadDim) || other.KVStorage() != KVF16 {
		t.Errorf("q8_0 on head size %d: %v, storage %v; want ErrKVQ8HeadDim and f16", other.Config.HeadDim, err, other.KVStorage())
	}
	if _, err := ParseKVStorage("q4_0"); err == nil {
		t.Error("ParseKVStorage accepted q4_0")
	}
	for _, s := range []KVStorage{KVF32, KVF16, KVQ8} {
		if got, err := ParseKVStorage(s.String()); err != nil || got != s {
			t.Errorf("ParseKVStorage(%q) = %v, %v", s.String(), got, err)
		}
	}
}

// sameLogits requires identical bits.
func sameLogits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: logit %d is %g, want %g", what, i, got[i], want[i])
		}
	}
}
