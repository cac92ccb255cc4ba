package model

import "testing"

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
