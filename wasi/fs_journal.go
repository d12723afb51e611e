package wasi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// journal tracks the guest's changes to mounted files for checkpoints and
// rollback. With Config.Journal set it is on from New: every change is
// tracked for the redo delta of the next checkpoint; from the first
// checkpoint (or rollback) on, what undoes each change is also appended to
// the journal file before the change is made.
type journal struct {
	s    *System
	path string // "" when rollback is off
	on   bool   // changes are tracked
	undo bool   // undo records are written
	// resumed says RollbackFiles was called: the journal holds history
	// and is never started anew.
	resumed bool

	f         *os.File // the journal, open for appending at size
	size      int64
	buf       []byte
	trash     *os.File // the trash directory beside the journal
	trashRoot *os.Root // the same, for undoing changes to trashed files

	// gen numbers the epoch being tracked; fdEntry.track is valid while
	// its trackGen equals gen.
	gen   uint64
	files map[fileID]*fileTrack
	ops   []deltaOp // namespace changes in this epoch, in order

	// seals and trashed index the journal for ReleaseFiles.
	seals   []journalMark
	trashed []journalMark
	// trashLinks counts the trash's names of files; the guest's link
	// counts leave them out.
	trashLinks map[fileID]int
}

// journalMark is a seal (epoch) or a trashed file (name) at offset at.
type journalMark struct {
	at    int64
	epoch uint64
	name  string
	id    fileID // a file moved (not copied) to the trash
}

// adjustLinks leaves the trash's names out of a link count.
func (j *journal) adjustLinks(st *filestat) {
	if len(j.trashLinks) > 0 {
		n := uint64(j.trashLinks[fileID{st.dev, st.ino}])
		if n <= st.nlink {
			st.nlink -= n
		}
	}
}

// trashLinked counts a file moved to the trash.
func (j *journal) trashLinked(id fileID) {
	if j.trashLinks == nil {
		j.trashLinks = make(map[fileID]int)
	}
	j.trashLinks[id]++
	j.trashed[len(j.trashed)-1].id = id
}

// untrashLinked undoes trashLinked when the trash name goes.
func (j *journal) untrashLinked(id fileID) {
	if id == (fileID{}) {
		return
	}
	if j.trashLinks[id]--; j.trashLinks[id] <= 0 {
		delete(j.trashLinks, id)
	}
}

// fileID identifies a file on the host.
type fileID struct{ dev, ino uint64 }

// fileTrack is what the journal knows of one regular file in an epoch.
type fileTrack struct {
	mount int
	// names are the paths the guest reached the file by, kept up to date
	// through renames and removals.
	names []string
	// created says the guest created the file in this epoch.
	created bool
	// baseSize is the size at the first change (0 if created): prior
	// contents below it are saved once per epoch.
	baseSize int64
	// minSize is the smallest size in the epoch; the delta truncates to
	// it before extending to the final size.
	minSize int64
	saved   spanSet // prior contents in the journal
	dirty   spanSet // ranges the guest wrote
}

func newJournal(s *System, path string) *journal {
	j := &journal{s: s, path: path, on: path != "", gen: 1}
	j.files = make(map[fileID]*fileTrack)
	return j
}

// trashDir is the directory of removed files, beside the journal.
func (j *journal) trashDir() string { return j.path + ".trash" }

// create starts a new journal and empty trash for a fresh run.
func (j *journal) create() error {
	if err := os.RemoveAll(j.trashDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(j.trashDir(), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(journalMagic), 0); err != nil {
		f.Close()
		return err
	}
	j.f, j.size = f, int64(len(journalMagic))
	j.seals, j.trashed = nil, nil
	return j.openTrash()
}

func (j *journal) openTrash() error {
	if err := os.MkdirAll(j.trashDir(), 0o700); err != nil {
		return err
	}
	t, err := os.Open(j.trashDir())
	if err != nil {
		return err
	}
	r, err := os.OpenRoot(j.trashDir())
	if err != nil {
		t.Close()
		return err
	}
	j.trash, j.trashRoot = t, r
	return nil
}

func (j *journal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if j.trash != nil {
		j.trash.Close()
		j.trashRoot.Close()
		j.trash, j.trashRoot = nil, nil
	}
}

// append writes r at the end of the journal. Records are written whole by
// one write; a kill in the middle leaves a torn tail that scanFrames
// ignores.
func (j *journal) append(r *jrec) error {
	if !j.undo {
		return nil
	}
	j.buf = appendFrame(j.buf[:0], r)
	if len(j.buf)-frameHeaderSize > maxRecordSize {
		return fmt.Errorf("%w: record of %d bytes", ErrJournal, len(j.buf))
	}
	if _, err := j.f.WriteAt(j.buf, j.size); err != nil {
		// A part written (a full disk) would be read as damage after the
		// next record: cut it off.
		_ = j.f.Truncate(j.size)
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	switch r.typ {
	case jrecSeal:
		j.seals = append(j.seals, journalMark{at: j.size, epoch: r.epoch})
	case jrecRemove:
		if r.kind == objFile {
			j.trashed = append(j.trashed, journalMark{at: j.size, name: r.rel2})
		}
	}
	j.size += int64(len(j.buf))
	return nil
}

// abort appends an abort record after an operation that failed.
func (j *journal) abort() {
	_ = j.append(&jrec{typ: jrecAbort})
}

// newEpoch starts tracking a new epoch.
func (j *journal) newEpoch() {
	j.gen++
	j.files = make(map[fileID]*fileTrack)
	j.ops = nil
}

// trackFD returns the tracking of the regular file open as e, starting it
// (and journaling the file's size and times) at its first change in the
// epoch; nil when changes are not tracked.
func (j *journal) trackFD(e *fdEntry) (*fileTrack, error) {
	if !j.on || e.detached {
		return nil, nil
	}
	if e.track != nil && e.trackGen == j.gen {
		return e.track, nil
	}
	mount, rel := e.journalPath()
	t, err := j.trackFile(e.file, mount, rel)
	if err != nil {
		return nil, err
	}
	e.track, e.trackGen = t, j.gen
	return t, nil
}

func (j *journal) trackFile(f *os.File, mount int, rel string) (*fileTrack, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	id := fileIDOf(fi)
	if t := j.files[id]; t != nil {
		if mount != trashMount {
			t.addName(rel)
		}
		return t, nil
	}
	at, mt := fileTimes(fi)
	if err := j.append(&jrec{typ: jrecMeta, mount: mount, rel: rel, size: fi.Size(), atime: at, mtime: mt}); err != nil {
		return nil, err
	}
	t := &fileTrack{mount: mount, baseSize: fi.Size(), minSize: fi.Size()}
	if mount != trashMount {
		t.names = []string{rel}
	}
	j.files[id] = t
	return t, nil
}

// created starts the tracking of a file the guest has just created.
func (j *journal) created(f *os.File, mount int, rel string) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	j.files[fileIDOf(fi)] = &fileTrack{mount: mount, names: []string{rel}, created: true}
}

// save journals the prior contents of [off, end) of the file f of t, at
// rel in mount, that are not saved yet in this epoch.
func (j *journal) save(t *fileTrack, f *os.File, mount int, rel string, off, end int64) error {
	if !j.undo {
		return nil
	}
	end = min(end, t.baseSize)
	if off >= end {
		return nil
	}
	for _, sp := range t.saved.missing(off, end) {
		for o := sp.off; o < sp.end; {
			n := min(sp.end-o, extentChunk)
			buf := make([]byte, n)
			c, err := f.ReadAt(buf, o)
			if err != nil && err != io.EOF {
				return err
			}
			if c > 0 {
				if err := j.append(&jrec{typ: jrecExtent, mount: mount, rel: rel, off: o, data: buf[:c]}); err != nil {
					return err
				}
			}
			o += n
		}
		t.saved.add(sp.off, sp.end)
	}
	return nil
}

func (t *fileTrack) addName(rel string) {
	if !t.hasName(rel) {
		t.names = append(t.names, rel)
	}
}

func (t *fileTrack) hasName(rel string) bool {
	for _, n := range t.names {
		if n == rel {
			return true
		}
	}
	return false
}

// renamed updates tracked paths after a rename within mount mi.
func (j *journal) renamed(mi int, from, to string) {
	for _, t := range j.files {
		if t.mount != mi {
			continue
		}
		for i, n := range t.names {
			switch {
			case n == from:
				t.names[i] = to
			case strings.HasPrefix(n, from+"/"):
				t.names[i] = to + n[len(from):]
			}
		}
	}
}

// removed drops the name rel of the file id from its tracking.
func (j *journal) removed(mi int, rel string, id fileID) {
	t := j.files[id]
	if t == nil || t.mount != mi {
		return
	}
	for i, n := range t.names {
		if n == rel {
			t.names = append(t.names[:i], t.names[i+1:]...)
			return
		}
	}
}

// trashName returns a new unique name for the trash.
func trashName() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// moveToTrash moves rel in m to the trash as name: a rename when on the
// same file system, else a copy and a removal.
func (j *journal) moveToTrash(m *mount, rel, name string) (copied bool, err error) {
	err = renameOut(m.root, rel, j.trash, name)
	if err == nil || !errors.Is(err, errXdev) {
		return false, err
	}
	if err := copyFile(m.root, rel, j.trashDir(), name); err != nil {
		return true, err
	}
	return true, m.root.Remove(rel)
}

// copyFile copies the regular file rel in root to dir/name, with its mode.
func copyFile(root *os.Root, rel, dir, name string) error {
	src, err := root.Open(rel)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// isNotExist reports a missing file or directory.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
