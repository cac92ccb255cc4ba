package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/impetusllm/impetus/inference/pages"
)

// IndexFile names the shard map that sharded Hugging Face / MLX models carry.
const IndexFile = "model.safetensors.index.json"

// Set is the union of a model folder's safetensors files, looked up by tensor
// name regardless of the shard that holds it.
type Set struct {
	dir    string
	files  []*File
	byName map[string]*File
}

// OpenModel opens the weights in dir: the shards named by
// model.safetensors.index.json when present, else every model*.safetensors
// (the mlx-lm rule), else every *.safetensors. A tensor name that appears in
// two files is an error, as is an index entry whose shard lacks the tensor.
func OpenModel(dir string) (*Set, error) {
	var paths []string
	var weightMap map[string]string
	indexPath := filepath.Join(dir, IndexFile)
	if b, err := os.ReadFile(indexPath); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("safetensors: %s: %w", indexPath, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("safetensors: %s: empty weight_map", indexPath)
		}
		seen := map[string]bool{}
		for name, shard := range idx.WeightMap {
			if shard == "" || filepath.Base(shard) != shard || shard == "." || shard == ".." {
				return nil, fmt.Errorf("safetensors: %s: tensor %q maps to %q, which is not a file in the folder", indexPath, name, shard)
			}
			if !seen[shard] {
				seen[shard] = true
				paths = append(paths, filepath.Join(dir, shard))
			}
		}
		sort.Strings(paths)
		weightMap = idx.WeightMap
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %w", err)
	} else {
		for _, pattern := range []string{"model*.safetensors", "*.safetensors"} {
			paths, err = filepath.Glob(filepath.Join(dir, pattern))
			if err != nil {
				return nil, fmt.Errorf("safetensors: %w", err)
			}
			if len(paths) > 0 {
				break
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("safetensors: no .safetensors files in %s", dir)
		}
		sort.Strings(paths)
	}

	s := &Set{dir: dir, byName: map[string]*File{}}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		for _, name := range f.names {
			if other, dup := s.byName[name]; dup {
				s.Close()
				return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", name, other.path, p)
			}
			s.byName[name] = f
		}
	}
	for name, shard := range weightMap {
		f, ok := s.byName[name]
		if !ok || filepath.Base(f.path) != shard {
			s.Close()
			return nil, fmt.Errorf("safetensors: %s lists tensor %q in %s, which does not hold it", indexPath, name, shard)
		}
	}
	return s, nil
}

// Dir is the folder given to OpenModel.
func (s *Set) Dir() string { return s.dir }

// Has reports whether a tensor of that name exists.
func (s *Set) Has(name string) bool { _, ok := s.byName[name]; return ok }

// Tensor returns the named tensor; the error wraps ErrNotFound when it is absent.
func (s *Set) Tensor(name string) (Tensor, error) {
	f, ok := s.byName[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: %s: %w: %q", s.dir, ErrNotFound, name)
	}
	t, _ := f.Tensor(name)
	return t, nil
}

// Release gives back the resident pages of the named tensor's data, for a
// tensor the caller has copied (repacked) and no longer reads; a later read
// maps them in again from the file. It returns the bytes released: none
// when the file was read into memory instead of mapped.
func (s *Set) Release(name string) int64 {
	f, ok := s.byName[name]
	if !ok || !f.mapped {
		return 0
	}
	t, _ := f.Tensor(name)
	return int64(pages.Release(t.Data))
}

// Names lists every tensor, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Files lists the opened files in path order.
func (s *Set) Files() []*File { return s.files }

// Size is the total size of the weight files in bytes.
func (s *Set) Size() int64 {
	var n int64
	for _, f := range s.files {
		n += f.Size()
	}
	return n
}

// Close unmaps every file; tensors from s must no longer be used.
func (s *Set) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files, s.byName = nil, nil
	return errors.Join(errs...)
}
