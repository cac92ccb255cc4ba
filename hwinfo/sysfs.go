package hwinfo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysfs reads files under a root that is /sys on a live host and a fake tree
// in tests, so parsers run against both.
type sysfs string

// liveSys is the host's sysfs.
const liveSys sysfs = "/sys"

func (s sysfs) path(parts ...string) string {
	return filepath.Join(append([]string{string(s)}, parts...)...)
}

// text reads a file and trims it; ok is false when it is absent or unreadable.
func (s sysfs) text(parts ...string) (string, bool) {
	b, err := os.ReadFile(s.path(parts...))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// int reads a file holding one integer.
func (s sysfs) int(parts ...string) (int64, bool) {
	t, ok := s.text(parts...)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(t, 10, 64)
	return v, err == nil
}

// maxCPUList bounds what parseCPUList accepts, so a corrupt file cannot make
// it allocate without limit.
const maxCPUList = 1 << 16

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11") into CPU
// numbers in order.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("cpu list %q: bad number %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		if b >= maxCPUList || len(out)+b-a+1 > maxCPUList {
			return nil, errors.New("cpu list too long")
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// parseSize parses a sysfs cache size such as "48K", "2048K" or "32M".
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cache size %q: %w", s, err)
	}
	if v > (1<<63)/mult {
		return 0, fmt.Errorf("cache size %q overflows", s)
	}
	return v * mult, nil
}
