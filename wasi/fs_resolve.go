package wasi

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// maxSymlinks bounds the symbolic links followed in one resolution, as
// Linux's MAXSYMLINKS does.
const maxSymlinks = 40

// location is where a guest path resolved to: a path within one mount.
type location struct {
	mi  int    // mount index
	m   *mount // the mount
	rel string // clean, slash-separated, "." for the mount root

	// fi is the Lstat of the final component, nil when it does not exist.
	fi fs.FileInfo
	// dirOnly is set when the guest path ended in a slash.
	dirOnly bool
}

// name is the last component of l.rel.
func (l *location) name() string { return path.Base(l.rel) }

// parent is the directory of l.rel within the mount.
func (l *location) parent() string { return path.Dir(l.rel) }

// splitPath splits a slash-separated path into components, dropping empty
// ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// mountFor returns the mount that holds guest path comps (the one with the
// longest guest path that is a prefix of it) and the components within it.
func (s *System) mountFor(comps []string) (int, []string) {
	best, bestLen := -1, -1
	for i, m := range s.mounts {
		mc := m.comps()
		if len(mc) > bestLen && hasPrefix(comps, mc) {
			best, bestLen = i, len(mc)
		}
	}
	if best < 0 {
		return -1, nil
	}
	return best, comps[bestLen:]
}

// aboveMount reports whether guest path comps is a proper ancestor of a mount.
func (s *System) aboveMount(comps []string) bool {
	for _, m := range s.mounts {
		mc := m.comps()
		if len(mc) > len(comps) && hasPrefix(mc, comps) {
			return true
		}
	}
	return false
}

func (m *mount) comps() []string { return splitPath(m.guest) }

func hasPrefix(a, prefix []string) bool {
	if len(prefix) > len(a) {
		return false
	}
	for i := range prefix {
		if a[i] != prefix[i] {
			return false
		}
	}
	return true
}

// dirEntry returns the directory fd paths are resolved against.
func (s *System) dirEntry(fd uint32) (*fdEntry, errno) {
	e, ok := s.fds.get(fd)
	if !ok {
		return nil, errnoBadf
	}
	if e.kind != kindDir {
		return nil, errnoNotdir
	}
	return e, errnoSuccess
}

// resolve resolves path p relative to the directory fd dir. p may not be
// absolute nor climb above dir lexically (EPERM, as wazero). Components are
// then walked one at a time in the guest's namespace: "..", and symbolic
// links (relative to their directory, absolute from the guest's root) are
// followed wherever they lead among the mounts, and nowhere else. follow
// says whether a final symbolic link is followed; a trailing slash implies
// it. The final component need not exist.
func (s *System) resolve(dir *fdEntry, p string, follow bool) (*location, errno) {
	if p == "" {
		return nil, errnoNoent
	}
	if strings.IndexByte(p, 0) >= 0 {
		return nil, errnoInval
	}
	if strings.HasPrefix(p, "/") {
		return nil, errnoPerm
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		return nil, errnoPerm
	}
	dirOnly := strings.HasSuffix(p, "/")
	if dirOnly {
		follow = true
	}
	cur := append(s.mounts[dir.mount].comps(), splitPath(dir.rel)...)
	pending := strings.Split(p, "/")
	links := 0
	var fi fs.FileInfo
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		last := isLast(pending)
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			fi = nil
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		mi, within := s.mountFor(next)
		if mi < 0 {
			if !s.aboveMount(next) {
				return nil, errnoNoent
			}
			cur, fi = next, nil
			continue
		}
		if len(within) == 0 {
			cur, fi = next, nil
			continue
		}
		m := s.mounts[mi]
		rel := strings.Join(within, "/")
		info, err := m.root.Lstat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !last {
				return nil, errnoNoent
			}
			cur, fi = next, nil
			continue
		case err != nil:
			return nil, toErrno(err)
		}
		if info.Mode()&fs.ModeSymlink != 0 && (!last || follow) {
			if links++; links > maxSymlinks {
				return nil, errnoLoop
			}
			target, err := m.root.Readlink(rel)
			if err != nil {
				return nil, toErrno(err)
			}
			if target == "" {
				return nil, errnoNoent
			}
			if strings.HasPrefix(target, "/") {
				cur = nil
			}
			pending = append(strings.Split(target, "/"), pending...)
			fi = nil
			continue
		}
		if !last && !info.IsDir() {
			return nil, errnoNotdir
		}
		cur, fi = next, info
	}
	mi, within := s.mountFor(cur)
	if mi < 0 {
		// A directory above the mounts: the guest may pass through it but
		// has no capability on it.
		return nil, errnoPerm
	}
	l := &location{mi: mi, m: s.mounts[mi], rel: ".", dirOnly: dirOnly}
	if len(within) > 0 {
		l.rel = strings.Join(within, "/")
	}
	if fi == nil {
		// The final step was "..", a mount root or a followed link: stat it.
		info, err := l.m.root.Lstat(l.rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, toErrno(err)
		default:
			fi = info
		}
	}
	l.fi = fi
	if dirOnly && fi != nil && !fi.IsDir() {
		return nil, errnoNotdir
	}
	return l, errnoSuccess
}

// isLast reports whether no component that names something remains.
func isLast(pending []string) bool {
	for _, c := range pending {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}
