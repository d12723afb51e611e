package wasi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Snapshot encoding: snapshotMagic, a uvarint version, then the fields
// written by Snapshot in order. Integers are varints, strings are a uvarint
// length and bytes.
const (
	snapshotMagic   = "LHWASI\x00"
	snapshotVersion = 2
)

// Snapshot encodes all checkpoint state of s: the pending poll_oneoff start
// time and the fd table (fds, kinds, preopens, paths within their mounts,
// offsets, flags, access modes, rights, directory listings).
func (s *System) Snapshot() ([]byte, error) {
	if s.closed {
		return nil, ErrClosed
	}
	b := []byte(snapshotMagic)
	b = binary.AppendUvarint(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(len(s.mounts)))
	for _, m := range s.mounts {
		b = appendString(b, m.guest)
	}
	b = appendBool(b, s.hasPending)
	b = binary.AppendVarint(b, s.pendingStart)
	b = appendBool(b, s.det != nil)
	if s.det != nil {
		b = s.det.appendState(b)
	}

	fds := make([]uint32, 0, len(s.fds.m))
	for fd := range s.fds.m {
		fds = append(fds, fd)
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i] < fds[j] })
	b = binary.AppendUvarint(b, uint64(len(fds)))
	for _, fd := range fds {
		e := s.fds.m[fd]
		b = binary.AppendUvarint(b, uint64(fd))
		b = append(b, byte(e.kind))
		b = appendBool(b, e.preopen)
		b = binary.AppendVarint(b, int64(e.mount))
		b = appendString(b, e.rel)
		b = binary.AppendVarint(b, e.offset)
		b = binary.AppendUvarint(b, uint64(e.fdflags))
		b = appendBool(b, e.read)
		b = appendBool(b, e.write)
		b = binary.AppendUvarint(b, e.rightsBase)
		b = binary.AppendUvarint(b, e.rightsInheriting)
		if e.dir == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(e.dir.entries))+1)
		for _, d := range e.dir.entries {
			b = appendString(b, d.name)
			b = binary.AppendUvarint(b, d.ino)
			b = append(b, d.filetype)
		}
	}
	return b, nil
}

// Restore replaces the state of s, a fresh System made with the same
// Config, by a snapshot, reopening every file and directory by its path
// within its mount. It must run before the guest does.
func (s *System) Restore(b []byte) error {
	if s.closed {
		return ErrClosed
	}
	st, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	if len(st.mounts) != len(s.mounts) {
		return fmt.Errorf("%w: snapshot has %d mounts, config %d", ErrRestore, len(st.mounts), len(s.mounts))
	}
	if st.det != (s.det != nil) {
		return fmt.Errorf("%w: snapshot deterministic %v, config %v", ErrRestore, st.det, s.det != nil)
	}
	var det *determinism
	if s.det != nil {
		det = &determinism{}
		if err := det.setState(st.detMono, st.detRand); err != nil {
			return fmt.Errorf("%w: random state: %v", ErrRestore, err)
		}
	}
	for i, g := range st.mounts {
		if s.mounts[i].guest != g {
			return fmt.Errorf("%w: mount %d is %q in snapshot, %q in config", ErrRestore, i, g, s.mounts[i].guest)
		}
	}
	t := &fdTable{m: make(map[uint32]*fdEntry, len(st.fds))}
	for fd, e := range st.fds {
		if e.mount >= len(s.mounts) {
			return fmt.Errorf("%w: fd %d: mount %d out of range", ErrRestore, fd, e.mount)
		}
		if e.kind == kindEvent && s.event == nil {
			return fmt.Errorf("%w: fd %d is an event fd, config has no event", ErrRestore, fd)
		}
		if err := s.reopen(e); err != nil {
			t.closeAll()
			return fmt.Errorf("%w: fd %d (%s): %v", ErrRestore, fd, e.rel, err)
		}
		t.m[fd] = e
	}
	s.fds.closeAll()
	s.fds = t
	s.hasPending, s.pendingStart = st.hasPending, st.pendingStart
	if det != nil {
		*s.det = *det
	}
	return nil
}

// reopen opens the host file of a decoded entry.
func (s *System) reopen(e *fdEntry) error {
	switch e.kind {
	case kindStdin, kindStdout, kindStderr, kindEvent:
		return nil
	}
	m := s.mounts[e.mount]
	flag := os.O_RDONLY
	switch {
	case e.read && e.write:
		flag = os.O_RDWR
	case e.write:
		flag = os.O_WRONLY
	}
	f, err := m.root.OpenFile(e.rel, flag, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if fi.IsDir() != (e.kind == kindDir) {
		f.Close()
		return errors.New("file type changed")
	}
	e.file = f
	return nil
}

type snapshotState struct {
	mounts       []string
	hasPending   bool
	pendingStart int64
	det          bool
	detMono      int64
	detRand      []byte
	fds          map[uint32]*fdEntry
}

func decodeSnapshot(b []byte) (*snapshotState, error) {
	if len(b) < len(snapshotMagic) || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: no magic", ErrSnapshot)
	}
	d := &decoder{b: b[len(snapshotMagic):]}
	v := d.uvarint()
	if d.err == nil && v != snapshotVersion && v != 1 {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, v, snapshotVersion)
	}
	st := &snapshotState{fds: make(map[uint32]*fdEntry)}
	nm := d.count(1)
	for i := 0; i < nm; i++ {
		st.mounts = append(st.mounts, d.string())
	}
	st.hasPending = d.bool()
	st.pendingStart = d.varint()
	if v >= 2 {
		if st.det = d.bool(); st.det {
			st.detMono = d.varint()
			st.detRand = []byte(d.string())
		}
	}
	nfd := d.count(12)
	for i := 0; i < nfd && d.err == nil; i++ {
		fd := d.uvarint()
		e := &fdEntry{}
		e.kind = fdKind(d.byte())
		e.preopen = d.bool()
		mnt := d.varint()
		e.rel = d.string()
		e.offset = d.varint()
		flags := d.uvarint()
		e.read = d.bool()
		e.write = d.bool()
		e.rightsBase = d.uvarint()
		e.rightsInheriting = d.uvarint()
		if n := d.count(3); n > 0 {
			e.dir = &dirCursor{entries: make([]dirent, 0, n-1)}
			for j := 1; j < n && d.err == nil; j++ {
				e.dir.entries = append(e.dir.entries, dirent{name: d.string(), ino: d.uvarint(), filetype: d.byte()})
			}
		}
		if d.err != nil {
			break
		}
		switch {
		case fd >= maxFDs:
			d.fail("fd %d out of range", fd)
		case st.fds[uint32(fd)] != nil:
			d.fail("fd %d twice", fd)
		case e.kind < kindStdin || e.kind > kindEvent:
			d.fail("fd %d: bad kind %d", fd, e.kind)
		case flags > 0xffff || e.offset < 0:
			d.fail("fd %d: bad flags or offset", fd)
		case e.hasPath() && (mnt < 0 || mnt >= int64(nm) || !validRel(e.rel)):
			d.fail("fd %d: bad mount or path", fd)
		case !e.hasPath() && (mnt != -1 || e.preopen || e.dir != nil):
			d.fail("fd %d: bad stdio or event entry", fd)
		case e.kind == kindFile && (e.preopen || e.dir != nil):
			d.fail("fd %d: bad file entry", fd)
		}
		e.mount = int(mnt)
		e.fdflags = uint16(flags)
		st.fds[uint32(fd)] = e
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return st, nil
}
