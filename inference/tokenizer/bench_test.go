package tokenizer

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// englishText builds n bytes of deterministic English-like prose.
func englishText(n int) string {
	words := strings.Fields(`the of and to in is was that for it with as his on be at by had are but from
		or have an they which one you were her all she there would their we him been has when who will more
		no if out so said what up its about into than them can only other new some could time these two may
		then do first any my now such like our over man me even most made after also did many before must
		through back years where much your way well down should because each just those people how too little
		state good very make world still own see men work long get here between both life being under never day
		same another know while last might us great old year off come since against go came right used take
		three weather river mountain language computer science history example question answer important`)
	r := rand.New(rand.NewSource(1))
	var b strings.Builder
	for b.Len() < n {
		k := 5 + r.Intn(15)
		for i := 0; i < k; i++ {
			w := words[r.Intn(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			if i < k-1 && r.Intn(10) == 0 {
				b.WriteByte(',')
			}
		}
		switch r.Intn(8) {
		case 0:
			b.WriteString("? ")
		case 1:
			b.WriteString(".\n\n")
		default:
			b.WriteString(". ")
		}
	}
	return b.String()
}

func benchEncode(b *testing.B, tk *Tokenizer) {
	text := englishText(1 << 20)
	tk.EncodePlain(text) // warm the cache as a long-running server would be
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk.EncodePlain(text)
	}
}

func BenchmarkEncodeLlama3(b *testing.B) { benchEncode(b, llama3Tokenizer(b)) }

func BenchmarkEncodeLlamaSPM(b *testing.B) {
	benchEncode(b, loadGGUFTokenizerTB(b, testutil.SharedPath(b, "assets", "gguf-vocab", "ggml-vocab-llama-spm.gguf")))
}

func BenchmarkEncodeGPT2(b *testing.B) {
	benchEncode(b, loadGGUFTokenizerTB(b, testutil.SharedPath(b, "assets", "gguf-vocab", "ggml-vocab-gpt-2.gguf")))
}

// TestLongWordIsNotQuadratic encodes 1 MB without any space, where the
// pre-tokenizer yields one huge piece and BPE must merge it efficiently.
func TestLongWordIsNotQuadratic(t *testing.T) {
	word := strings.Repeat("abcdefghij", 100000)
	digits := strings.Repeat("7", 1<<20)
	for name, tk := range map[string]*Tokenizer{
		"llama3":    llama3Tokenizer(t),
		"llama-spm": loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-llama-spm.gguf")),
	} {
		for _, text := range []string{word, digits} {
			start := time.Now()
			ids := tk.EncodePlain(text)
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("%s: 1 MB word took %v", name, el)
			}
			if got := tk.Decode(ids, false); got != text {
				t.Errorf("%s: long word does not round-trip", name)
			}
		}
	}
}
