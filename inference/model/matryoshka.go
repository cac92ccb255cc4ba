package model

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MatryoshkaInfo says whether an embedding model was trained so that the
// leading dimensions of its vectors are an embedding on their own
// (Matryoshka Representation Learning), which is what lets /v1/embeddings
// honour OpenAI's "dimensions" by truncating and renormalising.
//
// The rule, since no single standard field exists: a folder is Matryoshka
// trained when
//   - config_sentence_transformers.json or config.json carries
//     "matryoshka_dims": [sizes...] (an operator may add it to any folder), or
//   - its model card (README.md) front matter tags it "loss:MatryoshkaLoss"
//     or "loss:Matryoshka2dLoss", as sentence-transformers' trainer writes
//     cards, or
//   - the card says it uses "Matryoshka Representation Learning" (the cards
//     of nomic-embed-text-v1.5 and mxbai-embed-large-v1 do).
//
// Any size from 1 to the full dimension is then accepted, as OpenAI's
// text-embedding-3 models accept any.
type MatryoshkaInfo struct {
	Trained bool
	Dims    []int  // the trained sizes when the config lists them
	Source  string // which file said so, for logs and errors
}

// LoadMatryoshka applies the rule above to dir.
func LoadMatryoshka(dir string) (MatryoshkaInfo, error) {
	for _, name := range []string{"config_sentence_transformers.json", "config.json"} {
		var c struct {
			Dims *[]int `json:"matryoshka_dims"`
		}
		if err := readOptionalJSON(filepath.Join(dir, name), &c); err != nil {
			return MatryoshkaInfo{}, err
		}
		if c.Dims == nil {
			continue
		}
		if len(*c.Dims) == 0 {
			return MatryoshkaInfo{}, fmt.Errorf("%s: matryoshka_dims is empty", name)
		}
		for _, d := range *c.Dims {
			if d <= 0 {
				return MatryoshkaInfo{}, fmt.Errorf("%s: matryoshka_dims has size %d", name, d)
			}
		}
		return MatryoshkaInfo{Trained: true, Dims: *c.Dims, Source: name}, nil
	}
	card, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if errors.Is(err, os.ErrNotExist) {
		return MatryoshkaInfo{}, nil
	}
	if err != nil {
		return MatryoshkaInfo{}, err
	}
	if cardSaysMatryoshka(card) {
		return MatryoshkaInfo{Trained: true, Source: "README.md"}, nil
	}
	return MatryoshkaInfo{}, nil
}

// cardSaysMatryoshka looks for a Matryoshka loss tag in the card's YAML
// front matter, or the method's name in its text.
func cardSaysMatryoshka(card []byte) bool {
	if bytes.Contains(bytes.ToLower(card), []byte("matryoshka representation learning")) {
		return true
	}
	sc := bufio.NewScanner(bytes.NewReader(card))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "---" {
		return false
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "---" {
			return false
		}
		tag, ok := strings.CutPrefix(line, "- ")
		if !ok {
			continue
		}
		tag = strings.Trim(strings.TrimSpace(tag), `"'`)
		if tag == "loss:MatryoshkaLoss" || tag == "loss:Matryoshka2dLoss" {
			return true
		}
	}
	return false
}
