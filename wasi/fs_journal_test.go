package wasi

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ckptWriter is a guest's stdout that takes a file checkpoint at each
// "CKPT e" line, as a host pausing the guest would.
type ckptWriter struct {
	buf    bytes.Buffer
	s      *System
	onCkpt func(epoch uint64, delta []byte) error
	err    error
}

func (w *ckptWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for _, line := range strings.Split(string(p), "\n") {
		if e, ok := strings.CutPrefix(line, "CKPT "); ok && w.err == nil {
			epoch, _ := strconv.ParseUint(e, 10, 64)
			delta, err := w.s.CheckpointFiles(epoch)
			if err == nil {
				err = w.onCkpt(epoch, delta)
			}
			w.err = err
		}
	}
	return len(p), nil
}

// churnSetup fills dir with the files the churn guest starts from.
func churnSetup(t testing.TB, dir string) {
	rng := rand.New(rand.NewPCG(1, 2))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for i := 0; i < 6; i++ {
		b := make([]byte, rng.IntN(40000))
		for k := range b {
			b[k] = byte(rng.IntN(256))
		}
		name := fmt.Sprintf("in%d", i)
		if i%2 == 1 {
			name = "sub/" + name
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runChurn runs the churn guest on dir from epoch start to end, calling
// onCkpt after each file checkpoint. With rollback it first rolls back to
// start.
func runChurn(t *testing.T, dir, journal string, seed uint64, start, end, nops int, rollback bool,
	onCkpt func(s *System, epoch uint64, delta []byte) error) *System {
	w := &ckptWriter{}
	var stderr bytes.Buffer
	cfg := Config{
		Args:    []string{"guest", "churn", "/data", fmt.Sprint(seed), fmt.Sprint(start), fmt.Sprint(end), fmt.Sprint(nops)},
		Stdout:  w,
		Stderr:  &stderr,
		Mounts:  []Mount{{HostPath: dir, GuestPath: "/data"}},
		Journal: journal,
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.s = s
	w.onCkpt = func(e uint64, d []byte) error { return onCkpt(s, e, d) }
	if rollback {
		if _, err := s.RollbackFiles(uint64(start)); err != nil {
			t.Fatal(err)
		}
	} else if _, err := s.CheckpointFiles(uint64(start)); err != nil {
		// The start is a checkpoint too, so a kill before the first one
		// can be rolled back.
		t.Fatal(err)
	}
	res := runSystem(t, s, &bytes.Buffer{}, &stderr)
	if res.err != nil || res.exit != 0 || w.err != nil {
		t.Fatalf("churn: exit %d %v %v\n%s", res.exit, res.err, w.err, stderr.String())
	}
	return s
}

// treeOf describes every entry under dir: "d", "f:"+contents or
// "l:"+target.
func treeOf(t testing.TB, dir string) map[string]string {
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case d.IsDir():
			m[rel] = "d"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "l:" + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = "f:" + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffTrees(want, got map[string]string) string {
	var out []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, "missing "+k)
		case g != v:
			out = append(out, fmt.Sprintf("differs %s (%d vs %d bytes)", k, len(g), len(v)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// copyTree copies dir to dst, keeping symbolic and hard links.
func copyTree(t testing.TB, dir, dst string) {
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return os.Symlink(target, to)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		ino := uint64(fi.Sys().(*syscall.Stat_t).Ino)
		if first, ok := inodes[ino]; ok {
			return os.Link(first, to)
		}
		inodes[ino] = to
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFileCheckpointRollback runs the churn guest over several
// checkpoints, checks that each delta redoes its epoch on the previous
// view, then rolls back to older and older epochs in fresh Systems.
func TestFileCheckpointRollback(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	journal := filepath.Join(state, "journal")
	churnSetup(t, dir)
	views := map[uint64]map[string]string{0: treeOf(t, dir)}
	prev := t.TempDir()
	copyTree(t, dir, filepath.Join(prev, "v"))
	roots := func() []*os.Root {
		r, err := os.OpenRoot(filepath.Join(prev, "v"))
		if err != nil {
			t.Fatal(err)
		}
		return []*os.Root{r}
	}
	const epochs = 8
	s := runChurn(t, dir, journal, 7, 0, epochs, 25, false, func(s *System, e uint64, delta []byte) error {
		views[e] = treeOf(t, dir)
		r := roots()
		defer r[0].Close()
		if err := applyDelta(r, delta); err != nil {
			return fmt.Errorf("epoch %d: %v", e, err)
		}
		if d := diffTrees(views[e], treeOf(t, filepath.Join(prev, "v"))); d != "" {
			return fmt.Errorf("delta %d does not redo the epoch:\n%s", e, d)
		}
		return nil
	})
	s.Close()
	s, _ = New(Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
	if _, err := s.RollbackFiles(epochs + 1); err == nil {
		t.Fatal("rollback to an epoch never sealed succeeded")
	}
	s.Close()
	for _, e := range []uint64{epochs - 1, epochs - 3, 2, 0} {
		s, err := New(Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
		if err != nil {
			t.Fatal(err)
		}
		warns, err := s.RollbackFiles(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) > 0 {
			t.Errorf("rollback to %d: warnings %q", e, warns)
		}
		if d := diffTrees(views[e], treeOf(t, dir)); d != "" {
			t.Fatalf("after rollback to %d:\n%s", e, d)
		}
		s.Close()
	}
}

// TestFileRollbackWarnsOnForeignChange checks the warning for a file
// changed behind the guest's back.
func TestFileRollbackWarnsOnForeignChange(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	journal := filepath.Join(state, "journal")
	churnSetup(t, dir)
	runChurn(t, dir, journal, 3, 0, 2, 20, false, func(*System, uint64, []byte) error { return nil }).Close()
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("foreign\n")
	f.Close()
	s, _ := New(Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
	defer s.Close()
	warns, err := s.RollbackFiles(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "/data/log: changed since the checkpoint") {
		t.Fatalf("warnings %q", warns)
	}
}

// TestFileRollbackAfterKill kills a child process running the churn guest
// with a journal at random points, rolls back to a checkpoint taken before
// the kill (the newest, or an older one), checks every file against the
// view copied at that checkpoint, and resumes from there, until the guest
// finishes; the files then equal those of an uninterrupted run.
func TestFileRollbackAfterKill(t *testing.T) {
	t.Parallel()
	const seed, epochs, nops = 11, 30, 20
	ref := t.TempDir()
	churnSetup(t, ref)
	runChurn(t, ref, filepath.Join(t.TempDir(), "j"), seed, 0, epochs, nops, false,
		func(*System, uint64, []byte) error { return nil }).Close()

	dir, state := t.TempDir(), t.TempDir()
	churnSetup(t, dir)
	journal, views := filepath.Join(state, "journal"), filepath.Join(state, "views")
	os.Mkdir(views, 0o755)
	copyTree(t, dir, filepath.Join(views, "0"))
	os.WriteFile(filepath.Join(views, "0.done"), nil, 0o644)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	start, kills := 0, 0
	var history []string
	for round := 0; ; round++ {
		if round > 200 {
			t.Fatal("guest never finished")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileRollbackChild$")
		cmd.Env = append(os.Environ(), "WASI_TEST_GUEST="+guestPath, "WASI_CHURN_CHILD="+strings.Join([]string{
			dir, journal, views, fmt.Sprint(seed), fmt.Sprint(start), fmt.Sprint(epochs), fmt.Sprint(nops)}, "|"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// The kill comes at a random moment; in three rounds of four only
		// after the child has sealed a new epoch, so that the guest gets
		// on however slow the machine, the fourth may come before the
		// child has even started.
		var err error
		exited, killed := false, false
		if rng.IntN(4) != 0 {
			quit := make(chan struct{})
			select {
			case err = <-done:
				exited = true
			case <-fileAppears(filepath.Join(views, fmt.Sprintf("%d.done", start+1)), quit):
			}
			close(quit)
		}
		if !exited {
			select {
			case err = <-done:
			case <-time.After(time.Duration(rng.IntN(150)) * time.Millisecond):
				cmd.Process.Signal(syscall.SIGKILL)
				err = <-done
				killed = true
			}
		}
		if !killed {
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out.String())
			}
			break
		}
		kills++
		// The complete views are the checkpoints the host could restore.
		var sealed []int
		for e := start; e <= epochs; e++ {
			if _, err := os.Stat(filepath.Join(views, fmt.Sprintf("%d.done", e))); err == nil {
				sealed = append(sealed, e)
			}
		}
		to := sealed[len(sealed)-1]
		if len(sealed) > 1 && rng.IntN(3) == 0 {
			to = sealed[len(sealed)-2]
		}
		s, err := New(Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
		if err != nil {
			t.Fatal(err)
		}
		warns, err := s.RollbackFiles(uint64(to))
		s.Close()
		if err != nil && to == 0 && errors.Is(err, ErrRollback) {
			// Killed before the start was sealed: the guest never ran.
			err = nil
		}
		if err != nil {
			t.Fatalf("round %d: rollback to %d: %v", round, to, err)
		}
		if d := diffTrees(treeOf(t, filepath.Join(views, fmt.Sprint(to))), treeOf(t, dir)); d != "" {
			t.Fatalf("round %d: after rollback to %d:\n%s", round, to, d)
		}
		if len(warns) > 0 {
			t.Fatalf("round %d: warnings %q", round, warns)
		}
		if d := diffLinks(t, filepath.Join(views, fmt.Sprint(to)), dir, journal+".trash"); d != "" {
			t.Fatalf("round %d: after rollback to %d: link counts differ:\n%s", round, to, d)
		}
		for e := to + 1; e <= epochs; e++ {
			os.Remove(filepath.Join(views, fmt.Sprintf("%d.done", e)))
			os.RemoveAll(filepath.Join(views, fmt.Sprint(e)))
		}
		history = append(history, fmt.Sprintf("%d:%v->%d", round, sealed[len(sealed)-1], to))
		start = to
	}
	t.Logf("%d kills", kills)
	if d := diffTrees(treeOf(t, ref), treeOf(t, dir)); d != "" {
		want, _ := os.ReadFile(filepath.Join(ref, "log"))
		got, _ := os.ReadFile(filepath.Join(dir, "log"))
		wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Logf("first difference in the guest's log: %q, want %q (rounds: %s)", gl[i], wl[i], strings.Join(history, " "))
				break
			}
		}
		t.Fatalf("files differ from an uninterrupted run:\n%s", d)
	}
}

// fileAppears returns a channel closed once path exists; it gives up
// when quit is closed.
func fileAppears(path string, quit <-chan struct{}) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		for {
			if _, err := os.Stat(path); err == nil {
				close(c)
				return
			}
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return c
}

// TestFileRollbackChild runs the churn guest for TestFileRollbackAfterKill,
// copying the files at each checkpoint.
func TestFileRollbackChild(t *testing.T) {
	env := os.Getenv("WASI_CHURN_CHILD")
	if env == "" {
		t.Skip("run by TestFileRollbackAfterKill")
	}
	p := strings.Split(env, "|")
	dir, journal, views := p[0], p[1], p[2]
	seed, _ := strconv.ParseUint(p[3], 10, 64)
	start, _ := strconv.Atoi(p[4])
	end, _ := strconv.Atoi(p[5])
	nops, _ := strconv.Atoi(p[6])
	runChurn(t, dir, journal, seed, start, end, nops, start > 0, func(s *System, e uint64, _ []byte) error {
		v := filepath.Join(views, fmt.Sprint(e))
		os.RemoveAll(v)
		copyTree(t, dir, v)
		if err := os.WriteFile(v+".done", nil, 0o644); err != nil {
			return err
		}
		if e > 3 {
			s.ReleaseFiles(e - 3)
		}
		return nil
	}).Close()
}

// diffLinks compares the link counts of the files in view and in dir, less
// the names the trash holds.
func diffLinks(t testing.TB, view, dir, trash string) string {
	inTrash := map[uint64]uint64{}
	ents, _ := os.ReadDir(trash)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			inTrash[uint64(fi.Sys().(*syscall.Stat_t).Ino)]++
		}
	}
	var out []string
	filepath.WalkDir(view, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(view, p)
		vi, _ := os.Lstat(p)
		gi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			return nil
		}
		want := uint64(vi.Sys().(*syscall.Stat_t).Nlink)
		gs := gi.Sys().(*syscall.Stat_t)
		if got := uint64(gs.Nlink) - inTrash[uint64(gs.Ino)]; got != want {
			out = append(out, fmt.Sprintf("%s: %d links, want %d", rel, got, want))
		}
		return nil
	})
	return strings.Join(out, "\n")
}
