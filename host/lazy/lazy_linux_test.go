//go:build linux

package lazy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/librahost/librahost/ckpt"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

const chunk = 64 << 10

// image is a memory of n chunks: zero, random and repeating ones.
func image(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	mem := make([]byte, n*chunk)
	for i := range n {
		c := mem[i*chunk : (i+1)*chunk]
		switch r.IntN(3) {
		case 0:
		case 1:
			for j := range c {
				c[j] = byte(r.Uint32())
			}
		default:
			for j := range c {
				c[j] = byte(j % (7 + i))
			}
		}
	}
	return mem
}

// stored captures mem into a new store and returns it with its manifest.
func stored(t *testing.T, mem []byte) (*ckpt.Store, *ckpt.Manifest) {
	t.Helper()
	s, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true, ScrubBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := ckpt.Key{Job: "j"}
	p, err := s.Capture(ckpt.Meta{Key: key, Epoch: 1}, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	m, err := s.Manifest(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// mapping is guest memory as host/memalloc maps it, holding junk where
// the restore goes (a fresh instance's data segments).
func mapping(t *testing.T, size int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	for i := range 3 * chunk {
		b[i] = 0xAA
	}
	return b
}

// start starts the fill of m into mem, with fl (nil: Start spawns the
// filler), every chunk's place found up front.
func start(t *testing.T, s *ckpt.Store, m *ckpt.Manifest, mem []byte, fl *Filler) *Fill {
	t.Helper()
	srcs, err := s.MemorySources(m)
	if err != nil {
		t.Fatal(err)
	}
	return startConfig(t, Config{Memory: mem[:m.MemSize], ChunkSize: int(m.ChunkSize), Chunks: srcs, SegmentPath: s.SegmentPath, Filler: fl})
}

// startIndexed is start with the places found by the filler as it goes,
// in a snapshot of the index.
func startIndexed(t *testing.T, s *ckpt.Store, m *ckpt.Manifest, mem []byte, fl *Filler) *Fill {
	t.Helper()
	pin, err := s.PinIndex(m)
	if err != nil || pin == nil {
		t.Fatalf("index not pinned: %v", err)
	}
	t.Cleanup(pin.Release)
	return startConfig(t, Config{Memory: mem[:m.MemSize], ChunkSize: int(m.ChunkSize), Index: &pin.Snapshot, Hashes: m.Chunks, Filler: fl})
}

func startConfig(t *testing.T, cfg Config) *Fill {
	t.Helper()
	f, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// starts are the two ways a fill finds the chunks' places.
var starts = []struct {
	name  string
	start func(*testing.T, *ckpt.Store, *ckpt.Manifest, []byte, *Filler) *Fill
}{{"up-front", start}, {"indexed", startIndexed}}

// TestFill: with the background reader held after one chunk, the guest's
// touches (in a random order) and the kernel's (a write(2) from guest
// memory) are served on demand; then the rest is filled, and the memory is
// the image, byte for byte.
func TestFill(t *testing.T) {
	if err := Supported(); err != nil {
		t.Fatalf("lazy restore needs userfaultfd here: %v", err)
	}
	for _, st := range starts {
		t.Run(st.name, func(t *testing.T) { testFill(t, st.start) })
	}
}

func testFill(t *testing.T, start func(*testing.T, *ckpt.Store, *ckpt.Manifest, []byte, *Filler) *Fill) {
	const n = 64
	want := image(n, 1)
	s, m := stored(t, want)
	hold := filepath.Join(t.TempDir(), "go")
	t.Setenv(envHold, "1:"+hold)
	mem := mapping(t, 2*n*chunk)
	// A filler spawned ahead, and one never used, which exits.
	unused, err := Spawn()
	if err != nil {
		t.Fatal(err)
	}
	unused.Close()
	if !unused.cmd.ProcessState.Success() {
		t.Fatalf("an unused filler ended with %v", unused.cmd.ProcessState)
	}
	fl := spawnOnEndedThread(t)
	f := start(t, s, m, mem, fl)

	r := rand.New(rand.NewPCG(2, 2))
	for _, i := range r.Perm(n)[:n/2] {
		if got := mem[i*chunk+r.IntN(chunk)]; !bytes.Equal(mem[i*chunk:(i+1)*chunk], want[i*chunk:(i+1)*chunk]) {
			t.Fatalf("chunk %d differs on its first touch (byte %d)", i, got)
		}
	}
	// The kernel reads guest memory not filled yet.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Write(mem[:m.MemSize]); err != nil {
		t.Fatalf("write(2) from lazily restored memory: %v", err)
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	<-f.fl.waited // the filler exits once the fill is done: no failure
	if err := f.Err(); err != nil || f.Failed() {
		t.Fatalf("fill: %v (failed %v)", err, f.Failed())
	}
	if !bytes.Equal(mem[:m.MemSize], want) {
		t.Fatal("memory differs from the image once filled")
	}
	written, _ := os.ReadFile(out.Name())
	if !bytes.Equal(written, want) {
		t.Fatal("write(2) wrote other bytes than the image")
	}
	if b := mem[m.MemSize : m.MemSize+chunk]; !bytes.Equal(b, make([]byte, chunk)) {
		t.Fatal("memory past the restore is not zero")
	}
}

// spawnOnEndedThread spawns a filler from a thread that then ends, as the
// Go runtime ends a locked goroutine's thread (a copy-on-write handler's):
// the filler must outlive it.
func spawnOnEndedThread(t *testing.T) *Filler {
	t.Helper()
	type spawned struct {
		fl  *Filler
		tid int
		err error
	}
	ch := make(chan spawned)
	var sp spawned
	for sp.fl == nil && sp.err == nil {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			if unix.Gettid() == unix.Getpid() {
				ch <- spawned{} // the main thread does not end: again
				return
			}
			fl, err := Spawn()
			ch <- spawned{fl, unix.Gettid(), err}
		}()
		sp = <-ch
	}
	if sp.err != nil {
		t.Fatal(sp.err)
	}
	task := fmt.Sprintf("/proc/self/task/%d", sp.tid)
	for _, err := os.Stat(task); err == nil; _, err = os.Stat(task) {
		runtime.Gosched() // until the thread is gone
	}
	return sp.fl
}

// TestFillDamaged: a chunk damaged on disk is not given to the guest: the
// filler flags it and reports which chunk, and the store says why in the
// up-front check's words; so for a chunk whose place the filler looked up
// late, and for one missing from the index (a manifest naming a chunk the
// store does not hold).
func TestFillDamaged(t *testing.T) {
	for _, st := range starts {
		t.Run(st.name, func(t *testing.T) { testFillDamaged(t, st.start, false) })
	}
	t.Run("missing", func(t *testing.T) { testFillDamaged(t, startIndexed, true) })
}

func testFillDamaged(t *testing.T, start func(*testing.T, *ckpt.Store, *ckpt.Manifest, []byte, *Filler) *Fill, missing bool) {
	const n = 64 // a refs bucket of pages of its own, not inline
	want := image(n, 3)
	s, m := stored(t, want)
	srcs, err := s.MemorySources(m)
	if err != nil {
		t.Fatal(err)
	}
	var bad ckpt.ChunkSource
	for _, src := range srcs {
		if src.Seg != 0 && src.Size > 100 {
			bad = src
		}
	}
	if bad.Seg == 0 {
		t.Fatal("no chunk value in a segment")
	}
	if missing {
		mm := *m
		mm.Chunks = slices.Clone(m.Chunks)
		mm.Chunks[bad.Index][0] ^= 1
		m = &mm
	} else {
		sf, err := os.OpenFile(s.SegmentPath(bad.Seg), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		sf.ReadAt(b[:], int64(bad.Off)+50)
		b[0] ^= 0xff
		sf.WriteAt(b[:], int64(bad.Off)+50)
		sf.Close()
	}

	t.Setenv(envHold, "0:")
	mem := mapping(t, n*chunk)
	f := start(t, s, m, mem, nil)
	i := int(bad.Index)
	got := mem[i*chunk] // waits for the filler, which lets it past with zeros
	if !f.Failed() {
		t.Fatalf("touched a damaged chunk (byte %d) and the fill did not fail", got)
	}
	if !bytes.Equal(mem[i*chunk:(i+1)*chunk], make([]byte, chunk)) {
		t.Fatal("a damaged chunk's bytes reached the guest")
	}
	<-f.Done()
	var ce *ChunkError
	if !errors.As(f.Err(), &ce) || ce.Index != i {
		t.Fatalf("fill error %v, want chunk %d", f.Err(), i)
	}
	if err := s.ChunkErr(m, ce.Index); err == nil || !errors.Is(err, ckpt.ErrCorrupt) {
		t.Fatalf("store's error for the chunk: %v", err)
	}
	if err := s.Verify(m); err == nil || s.ChunkErr(m, ce.Index).Error() != err.Error() || strings.Contains(err.Error(), "\n") {
		t.Fatalf("the late find says %v, the up-front check %v", s.ChunkErr(m, ce.Index), err)
	}
}

// TestFillOneP: a guest that touches its memory as soon as Start returns,
// holding the process's only P while it waits for the filler, is served:
// the filler needs no goroutine of this process to run (one could not,
// here or under a stop-the-world).
func TestFillOneP(t *testing.T) {
	const n = 64
	want := image(n, 5)
	s, m := stored(t, want)
	mem := mapping(t, n*chunk)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, st := range starts {
		clear(mem) // dropped by Start
		f := st.start(t, s, m, mem, nil)
		if !bytes.Equal(mem[:m.MemSize], want) {
			t.Fatalf("%s: memory differs from the image", st.name)
		}
		<-f.Done()
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
	}
}
