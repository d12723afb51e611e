package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/librahost/librahost/ckpt"
)

// verboseHosts starts a cluster of three host processes, a, b and c,
// whose logs say how each rank was restored (-v); env is added to their
// environment.
func verboseHosts(t *testing.T, env ...string) (string, []*hostProc) {
	t.Helper()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	return cluster, startHostProcsArgs(t, cluster, env, []string{"-v"}, "a", "b", "c")
}

// A job over three host processes, each rank's checkpoints on every host
// (two replicas), whose hosts' lazy restores hold their background reader
// after two chunks until a file exists: host c is lost after the second
// committed epoch, and a and b restore their ranks lazily, their fills
// held (so no epoch is committed); b is then lost part-way through its
// fill, the job rolls back again without waiting for the fills (the
// ranks waiting for them to checkpoint are stopped), a restores every
// rank lazily, and once the fills go on the job prints byte for byte what
// the failure-free `run -n 6` prints.
func TestLazyRestoreShareKilledPartWay(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "400", "20")
	fill := filepath.Join(t.TempDir(), "fill")
	cluster, hs := verboseHosts(t, "LIBRAHOST_LAZY_HOLD=2:"+fill)
	sub := job.submit(t, cluster, hs, "--failure-timeout", lossTimeout, "--replicas", "2")
	w := watchLosses(t, hs[0], sub)
	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
	w.kill(t, hs[2])
	restored := regexp.MustCompile(`rank \d+: restore: (lazy|eager)[^\n]*`)
	if m := waitHostLog(t, hs[1], restored, w.done); m[0][1] != "lazy" {
		t.Fatalf("host b restored a rank eagerly: %s", m[0][0])
	}
	waitHostLog(t, hs[1], regexp.MustCompile(`lazy fill held after 2 chunks`), w.done)
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in`), w.done)
	w.kill(t, hs[1])
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 2 in`), w.done)
	if err := os.WriteFile(fill, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ended := finishHeld(t, job, sub, "hosts c and b killed")
	// a ran every rank at last, each restored lazily at each recovery.
	waitHostLog(t, hs[0], regexp.MustCompile(`incarnation 2: ranks on \[a a a a a a\]`), ended)
	for rank := range 6 {
		waitHostLog(t, hs[0], regexp.MustCompile(fmt.Sprintf(`rank %d: restore: lazy`, rank)), ended)
	}
	if m := restored.FindAllStringSubmatch(readLog(t, hs[0]), -1); len(m) == 0 || slices.ContainsFunc(m, func(m []string) bool { return m[1] != "lazy" }) {
		t.Fatalf("host a restored a rank eagerly:\n%s", readLog(t, hs[0]))
	}
}

// finishHeld lets job, which sub submitted, end, checks that sub printed
// what its failure-free run prints, and returns a closed channel, for
// waitHostLog's checks of what the hosts logged before (what: how the job
// was hurt, for the failure).
func finishHeld(t *testing.T, job *heldHeat, sub *bgSubmit, what string) <-chan struct{} {
	t.Helper()
	job.release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("%s: submit: %v\n%s", what, sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), job.want)
	ended := make(chan struct{})
	close(ended)
	return ended
}

// readLog is host h's log so far.
func readLog(t *testing.T, h *hostProc) string {
	t.Helper()
	b, err := os.ReadFile(h.stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A job over three host processes (verbose), one replica of each rank,
// whose host c is lost after the second committed epoch: the hosts left
// roll back with every rank placed on them, their own and c's (from the
// replicas), restored lazily, and the job prints byte for byte what the
// failure-free `run -n 6` prints. Rank 0 is held at its end until the
// recovery is done.
func TestLazyRestoreShareRecovery(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "400", "20")
	cluster, hs := verboseHosts(t)
	sub := job.submit(t, cluster, hs, "--failure-timeout", lossTimeout, "--replicas", "1")
	w := watchLosses(t, hs[0], sub)
	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
	w.kill(t, hs[2])
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in`), w.done)
	ended := finishHeld(t, job, sub, "host c killed")
	place := strings.Fields(waitHostLog(t, hs[0], regexp.MustCompile(`incarnation 1: ranks on \[([a-z ]+)\]`), ended)[0][1])
	byName := map[string]*hostProc{"a": hs[0], "b": hs[1]}
	for rank, name := range place {
		h := byName[name]
		if h == nil {
			t.Fatalf("rank %d placed on %s after its loss: %v", rank, name, place)
		}
		waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`rank %d: restore: lazy`, rank)), ended)
	}
}

// A job over three host processes whose coordinator's host is lost, with
// a chunk of rank 1's memory damaged on disk on host b (in every epoch b
// keeps of it), is resumed on b and c: b restores its ranks lazily, finds
// the chunk late, and the job fails in one line naming a rank and the
// damage, as the check up front does at a recovery (here no older epoch
// is undamaged), having printed nothing but what the failure-free run
// prints.
func TestLazyRestoreShareDamagedChunk(t *testing.T) {
	t.Parallel()
	job, cluster, hs, sub, id := keptShareJob(t)
	damageEveryEpoch(t, filepath.Join(hs[1].data, "jobs", id, "ckpt.db"), ckpt.Key{Job: "job", Worker: 1})

	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hs[1].addr+","+hs[2].addr)
	if code != 1 {
		t.Fatalf("submit --resume with a damaged chunk: exit %d\n%s", code, stderr)
	}
	// What was printed is what the failure-free run prints, so far.
	got := append(sub.out.Bytes(), out...)
	compareOutput(t, got, job.want[:min(len(got), len(job.want))])
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`rank 1: restore: lazy`), ended)
	// The resume says where it resumed from, then the error.
	last := stderr
	if i := strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n"); i >= 0 {
		last = stderr[i+1:]
	}
	oneLineError(t, last, "corrupt")
	// The value may be shared by other ranks' checkpoints here (0, 3, 4:
	// the same chunk), and the job fails in the first rank's words.
	if !regexp.MustCompile(`^librahost submit: rank [0134]: ckpt: `).MatchString(last) {
		t.Fatalf("the late find does not name the rank:\n%s", stderr)
	}
}

// keptShareJob submits a held heat job to verbose hosts a, b and c,
// loses a, its coordinator's host, after the second committed epoch and
// returns once the job stopped on b with its epochs kept (its store
// closed).
func keptShareJob(t *testing.T) (job *heldHeat, cluster string, hs []*hostProc, sub *bgSubmit, id string) {
	t.Helper()
	job = newHeldHeat(t, "400", "20")
	cluster, hs = verboseHosts(t)
	sub = job.submit(t, cluster, hs, "--failure-timeout", failTimeout)
	id = loseCoordinator(t, cluster, hs, sub)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: its checkpoints here are kept in`), nil)
	return job, cluster, hs, sub, id
}

// damageEveryEpoch flips a byte in the middle of a chunk value, kept in a
// segment file, that every epoch of key k in the store at path holds in
// its memory.
func damageEveryEpoch(t *testing.T, path string, k ckpt.Key) {
	t.Helper()
	store, err := ckpt.Open(ckpt.Config{Path: path, ScrubBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	infos, err := store.Epochs(k)
	if err != nil || len(infos) == 0 {
		t.Fatalf("no epoch of %v in %s (%v)", k, path, err)
	}
	type place struct {
		seg       uint32
		off, size uint64
	}
	count := map[place]int{}
	for _, in := range infos {
		m, err := store.Manifest(k, in.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		srcs, err := store.MemorySources(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range srcs {
			if s.Seg != 0 {
				count[place{s.Seg, s.Off, s.Size}]++
			}
		}
	}
	for p, n := range count {
		if n != len(infos) {
			continue
		}
		flipByte(t, store.SegmentPath(p.seg), int64(p.off+p.size/2))
		return
	}
	t.Fatalf("no chunk value of %v is in every one of its %d epochs", k, len(infos))
}

// A job over three host processes whose newest committed epoch has a
// damaged chunk on host b falls back: its coordinator's host a lost
// after the second committed epoch, a first `submit --resume` on b and c
// fails when b's lazy restore finds the chunk, tells the hosts what it
// printed and says how to go on; a second goes on from an older
// committed epoch (b no longer offers the damaged one), and the three
// submitters together print byte for byte what the failure-free `run -n
// 6` prints.
func TestLazyRestoreShareDamagedFallsBack(t *testing.T) {
	t.Parallel()
	job, cluster, hs, sub, id := keptShareJob(t)
	newest := damageNewest(t, filepath.Join(hs[1].data, "jobs", id), ckpt.Key{Job: "job", Worker: 1})

	// Released now, a resume that did not fail would end, not hang: a
	// rank's memory is all in before it ends.
	job.release.open(t)
	hosts := hs[1].addr + "," + hs[2].addr
	out1, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hosts)
	last := stderr
	if i := strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n"); i >= 0 {
		last = stderr[i+1:]
	}
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("resumes from epoch %d on", newest)) {
		t.Fatalf("submit --resume with a damaged chunk in epoch %d: exit %d\n%s", newest, code, stderr)
	}
	oneLineError(t, last, "corrupt")
	if !strings.Contains(last, "`librahost submit --resume "+id+" --cluster "+cluster+" --hosts "+hosts+"`") {
		t.Fatalf("the failure does not say how to resume:\n%s", stderr)
	}

	out2, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hosts)
	if code != 0 {
		t.Fatalf("submit --resume after the damaged epoch %d: exit %d\n%s", newest, code, stderr)
	}
	if !strings.Contains(stderr, "job "+id+" resumes from epoch ") {
		t.Fatalf("submit --resume said:\n%s", stderr)
	}
	compareOutput(t, append(append(sub.out.Bytes(), out1...), out2...), job.want)
}

// damageNewest flips a byte in the middle of a chunk value that the
// newest committed epoch (a commit record in the job's directory dir) of
// key k holds in its memory and that no older epoch of any key holds,
// and returns that epoch.
func damageNewest(t *testing.T, dir string, k ckpt.Key) uint64 {
	t.Helper()
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(dir, "ckpt.db"), ScrubBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	infos, err := store.Epochs(k)
	if err != nil {
		t.Fatal(err)
	}
	var newest uint64
	for _, in := range infos {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("commit-%d", in.Epoch))); err == nil {
			newest = max(newest, in.Epoch)
		}
	}
	if newest == 0 {
		t.Fatalf("no committed epoch of %v in %s", k, dir)
	}
	type place struct {
		seg       uint32
		off, size uint64
	}
	sources := func(k ckpt.Key, e uint64) []ckpt.ChunkSource {
		m, err := store.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		srcs, err := store.MemorySources(m)
		if err != nil {
			t.Fatal(err)
		}
		return srcs
	}
	older := map[place]bool{}
	keys, err := store.Keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ins, _ := store.Epochs(k)
		for _, in := range ins {
			if in.Epoch < newest {
				for _, s := range sources(k, in.Epoch) {
					older[place{s.Seg, s.Off, s.Size}] = true
				}
			}
		}
	}
	for _, s := range sources(k, newest) {
		p := place{s.Seg, s.Off, s.Size}
		if s.Seg == 0 || older[p] {
			continue
		}
		flipByte(t, store.SegmentPath(p.seg), int64(p.off+p.size/2))
		return newest
	}
	t.Fatalf("every chunk value of epoch %d of %v is in an older epoch", newest, k)
	return 0
}

// flipByte flips the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}
