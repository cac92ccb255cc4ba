package hub

import (
	"fmt"
	"path"
	"strings"
)

// ValidateRepoID checks a model repository id of the form ORG/NAME. Both parts
// use the hub's characters (letters, digits, '-', '_', '.'); "--" and ".." are
// refused because the cache folder name models--ORG--NAME must map back to one id.
func ValidateRepoID(id string) error {
	org, name, ok := strings.Cut(id, "/")
	if !ok || strings.Contains(name, "/") {
		return fmt.Errorf("repository id %q: want ORG/NAME", id)
	}
	for _, part := range []string{org, name} {
		if part == "" || len(part) > 96 {
			return fmt.Errorf("repository id %q: each part must have 1 to 96 characters", id)
		}
		if strings.Contains(part, "--") || strings.Contains(part, "..") {
			return fmt.Errorf("repository id %q: \"--\" and \"..\" are not allowed", id)
		}
		if part[0] == '.' || part[0] == '-' || part[len(part)-1] == '.' || part[len(part)-1] == '-' {
			return fmt.Errorf("repository id %q: parts must start and end with a letter, digit or '_'", id)
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("repository id %q: character %q not allowed", id, r)
			}
		}
	}
	return nil
}

// RepoFolderName is the cache folder of a repository: models--ORG--NAME.
func RepoFolderName(repoID string) string {
	return "models--" + strings.ReplaceAll(repoID, "/", "--")
}

// ValidateRevision checks a revision (branch, tag or commit) before it becomes
// part of a URL or a refs/ file path: slash-separated parts of safe characters,
// none empty, "." or "..".
func ValidateRevision(rev string) error {
	if rev == "" || len(rev) > 255 {
		return fmt.Errorf("revision %q: must have 1 to 255 characters", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("revision %q: empty, \".\" or \"..\" part", rev)
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("revision %q: character %q not allowed", rev, r)
			}
		}
	}
	return nil
}

// isCommit reports whether rev is a full 40-hex git commit id.
func isCommit(rev string) bool { return isHex(rev, 40) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// ValidateFileName checks a file name listed by the hub before it is joined
// under a snapshot folder: relative, slash-separated, no empty, "." or ".."
// part, no backslash, NUL or control characters, and not inside .git.
func ValidateFileName(name string) error {
	if name == "" || len(name) > 1024 {
		return fmt.Errorf("file name %q: must have 1 to 1024 characters", name)
	}
	if strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\:") {
		return fmt.Errorf("file name %q: absolute paths, backslashes and colons are not allowed", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("file name %q: control characters are not allowed", name)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("file name %q: not a clean relative path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("file name %q: empty, \".\" or \"..\" part", name)
		}
		if part == ".git" {
			return fmt.Errorf("file name %q: .git is not allowed", name)
		}
	}
	return nil
}
