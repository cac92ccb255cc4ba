package inference

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Format is how a model's weights are stored on disk.
type Format string

const (
	// FormatMLX is a Hugging Face / mlx-community folder of safetensors files
	// (float or MLX affine-quantized) with config.json.
	FormatMLX Format = "MLX"
	// FormatGGUF is a single GGUF file.
	FormatGGUF Format = "GGUF"
)

// LocalModel is a model found in the models directory. Path is absolute: a
// folder for FormatMLX, a file for FormatGGUF.
type LocalModel struct {
	ID        string
	Path      string
	Format    Format
	Kind      ModelKind // chat or embedding, from the folder's config
	SizeBytes int64
	Modified  time.Time
}

// maxScanDepth bounds how deep the scan descends, so a stray huge tree under
// the models directory cannot stall listing.
const maxScanDepth = 6

// scanDir adds the models in dir, depth levels below root. Symbolic links
// are followed, wherever they lead (the operator placed them, and the Hugging
// Face cache is made of them); a folder that is one of its own ancestors
// (a link loop) is skipped. Unreadable entries and broken links are skipped.
func scanDir(root, dir string, depth int, parents []os.FileInfo, add func(LocalModel)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if depth == 0 {
			return err
		}
		return nil
	}
	for _, d := range entries {
		name := d.Name()
		path := filepath.Join(dir, name)
		st, err := os.Stat(path) // follows links
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(root, path)
		if !st.IsDir() {
			if st.Mode().IsRegular() && strings.HasSuffix(strings.ToLower(name), ".gguf") {
				id := filepath.ToSlash(strings.TrimSuffix(rel, filepath.Ext(rel)))
				add(LocalModel{ID: id, Path: path, Format: FormatGGUF, Kind: ggufKind(path), SizeBytes: st.Size(), Modified: st.ModTime()})
			}
			continue
		}
		if strings.HasPrefix(name, ".") || isAncestor(st, parents) {
			continue
		}
		if strings.HasPrefix(name, "models--") {
			if m, ok := hfCacheModel(path, name); ok {
				add(m)
			}
			continue
		}
		if isSafetensorsModel(path) {
			add(LocalModel{ID: filepath.ToSlash(rel), Path: path, Format: FormatMLX, Kind: folderKind(path), SizeBytes: dirWeightsSize(path), Modified: st.ModTime()})
			continue
		}
		if depth+1 < maxScanDepth {
			scanDir(root, path, depth+1, append(parents, st), add)
		}
	}
	return nil
}

// isAncestor reports whether st is the same folder as one of parents.
func isAncestor(st os.FileInfo, parents []os.FileInfo) bool {
	for _, p := range parents {
		if os.SameFile(st, p) {
			return true
		}
	}
	return false
}

// ScanModels lists the models under dir in three layouts: Hugging Face
// cache entries (models--ORG--NAME, id ORG/NAME),
// folders holding config.json plus safetensors (id = relative path), and lone
// .gguf files (id = relative path without .gguf). A missing dir is not an
// error: it simply holds no models.
func ScanModels(dir string) ([]LocalModel, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("models directory %q: %w", dir, err)
	}
	st, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("models directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("models directory %s is not a directory", root)
	}
	var out []LocalModel
	seen := map[string]bool{}
	add := func(m LocalModel) {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	if err := scanDir(root, root, 0, []os.FileInfo{st}, add); err != nil {
		return nil, fmt.Errorf("scanning models directory %s: %w", root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// hfCacheModel resolves models--ORG--NAME to its current snapshot: the revision
// named by refs/main, else the most recently modified snapshot.
func hfCacheModel(path, name string) (LocalModel, bool) {
	parts := strings.SplitN(strings.TrimPrefix(name, "models--"), "--", 2)
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return LocalModel{}, false
	}
	id := parts[0] + "/" + parts[1]
	snaps := filepath.Join(path, "snapshots")
	var snap string
	if ref, err := os.ReadFile(filepath.Join(path, "refs", "main")); err == nil {
		rev := strings.TrimSpace(string(ref))
		if rev != "" && !strings.ContainsAny(rev, `/\`) && rev != "." && rev != ".." {
			snap = filepath.Join(snaps, rev)
		}
	}
	if snap == "" || !isDir(snap) {
		entries, err := os.ReadDir(snaps)
		if err != nil {
			return LocalModel{}, false
		}
		var newest time.Time
		for _, e := range entries {
			p := filepath.Join(snaps, e.Name())
			if t := modTime(p); e.IsDir() && t.After(newest) {
				newest, snap = t, p
			}
		}
	}
	if snap == "" {
		return LocalModel{}, false
	}
	if isSafetensorsModel(snap) {
		return LocalModel{ID: id, Path: snap, Format: FormatMLX, Kind: folderKind(snap), SizeBytes: dirWeightsSize(snap), Modified: modTime(snap)}, true
	}
	// A GGUF repository: use its single .gguf file if it has exactly one.
	matches, _ := filepath.Glob(filepath.Join(snap, "*.gguf"))
	if len(matches) == 1 {
		st, err := os.Stat(matches[0])
		if err == nil {
			return LocalModel{ID: id, Path: matches[0], Format: FormatGGUF, Kind: ggufKind(matches[0]), SizeBytes: st.Size(), Modified: st.ModTime()}, true
		}
	}
	return LocalModel{}, false
}

func isSafetensorsModel(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return len(matches) > 0
}

// dirWeightsSize sums the weight files, following the Hugging Face cache's
// symlinks into blobs/.
func dirWeightsSize(dir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	var n int64
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil {
			n += st.Size()
		}
	}
	return n
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func modTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
