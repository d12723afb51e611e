//go:build linux && !race

package dirty

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fill writes phase's pattern into every page of mem[lo:hi): each 8-byte
// word holds the phase and its own offset.
func fill(mem []byte, lo, hi int, phase uint64) {
	for o := lo; o+8 <= hi; o += 8 {
		binary.LittleEndian.PutUint64(mem[o:], phase<<40|uint64(o))
	}
}

// check reports the first word of b (at offset off of the memory) that
// does not hold phase's pattern.
func check(b []byte, off int, phase uint64) (int, bool) {
	for o := 0; o+8 <= len(b); o += 8 {
		if binary.LittleEndian.Uint64(b[o:]) != phase<<40|uint64(off+o) {
			return off + o, false
		}
	}
	return 0, true
}

// hammer writes phase's pattern at random into mem until stop is closed,
// the way a guest rewrites its memory while a capture copies it.
func hammer(mem []byte, phase uint64, seed uint64, stop chan struct{}, wrote *atomic.Int64) {
	r := rand.New(rand.NewPCG(seed, 7))
	pages := len(mem) / 4096
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range 64 {
			p := r.IntN(pages) * 4096
			o := p + r.IntN(4096/8)*8
			binary.LittleEndian.PutUint64(mem[o:], phase<<40|uint64(o))
		}
		wrote.Add(64)
	}
}

// A snapshot holds the memory as it was at Freeze, byte for byte, while
// writers rewrite it as fast as they can and the collector stops the
// world again and again; with and without tracking.
func TestCOWSnapshot(t *testing.T) {
	const size = 32 << 20
	const chunk = 64 << 10
	mem, tr := newTestWith(t, size, NewCOW)
	fill(mem, 0, size, 1)

	var wrote atomic.Int64
	gcStop := make(chan struct{})
	var gcs sync.WaitGroup
	gcs.Add(1)
	go func() { // stop-the-world while writers fault
		defer gcs.Done()
		for {
			select {
			case <-gcStop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer func() { close(gcStop); gcs.Wait() }()

	capture := func(phase uint64, need []bool) {
		t.Helper()
		snap, err := tr.Freeze(size)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var ws sync.WaitGroup
		for i := range 2 {
			ws.Add(1)
			go func() { defer ws.Done(); hammer(mem, phase+1, uint64(i)+phase, stop, &wrote) }()
		}
		err = verify(snap, chunk, need, func(int) uint64 { return phase })
		close(stop)
		ws.Wait()
		if err != nil {
			t.Fatalf("phase %d: snapshot %v", phase, err)
		}
		fill(mem, 0, size, phase+1) // the next phase, everywhere
	}

	// Without tracking: everything is protected and copied.
	capture(1, nil)
	capture(2, nil)
	faults, copied := tr.Faults()
	t.Logf("untracked: %d faults, %d blocks copied, %d writes, pool %+v", faults, copied, wrote.Load(), tr.Pool())
	if faults == 0 {
		t.Fatal("no write faulted while the snapshots were read")
	}
	if tr.Pool().Faulted <= 0 {
		t.Fatalf("%d faults resolved in no time (PoolStats.Faulted %v)", faults, tr.Pool().Faulted)
	}

	// Tracked: Collect reports what was written since the last one; a
	// capture needs only that.
	var all []int
	if err := tr.Collect(size, func(s, e uint64) { all = append(all, int(e-s)) }); err != nil {
		t.Fatal(err)
	}
	fill(mem, 0, size, 3) // nothing protected is skipped: written again
	fill(mem, 5*chunk, 7*chunk, 3)
	var need []bool
	need = make([]bool, size/chunk)
	n := 0
	if err := tr.Collect(size, func(s, e uint64) {
		for i := s / chunk; i < (e+chunk-1)/chunk; i++ {
			need[i] = true
		}
		n += int(e - s)
	}); err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("Collect after a full rewrite: %d bytes written, want %d", n, size)
	}
	capture(3, need)
	// What the writers wrote after the freeze is tracked: the next
	// Collect reports exactly the units they wrote, and the protection
	// is back on everything else.
	n = 0
	if err := tr.Collect(size, func(s, e uint64) { n += int(e - s) }); err != nil {
		t.Fatal(err)
	}
	if n != size { // fill(phase+1) rewrote everything after the capture
		t.Fatalf("tracked: %d bytes reported written, want %d", n, size)
	}
	mem[3*chunk+5] = 9
	var got [][2]uint64
	if err := tr.Collect(size, func(s, e uint64) { got = append(got, [2]uint64{s, e}) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0][0] > 3*chunk+5 || got[0][1] <= 3*chunk+5 || got[0][1]-got[0][0] > TrackUnit {
		t.Fatalf("one byte written: Collect reports %v", got)
	}
}

// The kernel's writes into protected memory fail rather than wait for the
// handler; Release lifts the protection first, and the snapshot still has
// the bytes of the freeze.
func TestCOWRelease(t *testing.T) {
	const size = 8 << 20
	mem, tr := newTestWith(t, size, NewCOW)
	fill(mem, 0, size, 1)
	snap, err := tr.Freeze(size)
	if err != nil {
		t.Fatal(err)
	}
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	msg := []byte("written by the kernel")
	at := 3*CopyBlock + 100
	unix.Write(fds[1], msg)
	if _, err := unix.Read(fds[0], mem[at:at+len(msg)]); err != unix.EFAULT {
		t.Fatalf("read(2) into protected memory: %v, want EFAULT", err)
	}
	Release(mem[at : at+len(msg)])
	if n, err := unix.Read(fds[0], mem[at:at+len(msg)]); err != nil || n != len(msg) {
		t.Fatalf("read(2) after Release: %d, %v", n, err)
	}
	if err := verify(snap, 64<<10, nil, func(int) uint64 { return 1 }); err != nil {
		t.Fatalf("snapshot %v", err)
	}
	if string(mem[at:at+len(msg)]) != string(msg) {
		t.Fatalf("memory after the read: %q", mem[at:at+len(msg)])
	}
}

// collectUntil runs the collector in a loop on a goroutine of ws until
// stop is closed: stops of the world while writers fault.
func collectUntil(stop chan struct{}, ws *sync.WaitGroup) {
	ws.Add(1)
	go func() {
		defer ws.Done()
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
}

// freezeBeside freezes [0, size) while the snapshot before, a, is neither
// copied nor read: Freeze must not wait for a. If it does, the watchdog
// ends a (so that the test ends) and the test fails.
func freezeBeside(t *testing.T, tr *Tracker, a *Snapshot, size uint64) *Snapshot {
	t.Helper()
	type res struct {
		s   *Snapshot
		err error
	}
	got := make(chan res, 1)
	go func() {
		s, err := tr.Freeze(size)
		got <- res{s, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.s
	case <-time.After(time.Minute): // a deadlock's watchdog, not a timing
		a.Done()
		<-got
		t.Fatal("Freeze waited for the snapshot before it to be read")
		return nil
	}
}

// verify reads every needed chunk of snap in the order Next gives and
// checks it holds phase(offset)'s pattern.
func verify(snap *Snapshot, chunk int, need []bool, phase func(off int) uint64) error {
	snap.Need(chunk, need)
	defer snap.Done()
	buf := make([]byte, chunk)
	for {
		lo, hi := snap.Next(chunk)
		if lo >= hi {
			return nil
		}
		for i := lo; i < hi; i++ {
			if need != nil && !need[i] {
				continue
			}
			got := snap.Read(buf, i, chunk)
			if at, ok := check(got, i*chunk, phase(i*chunk)); !ok {
				return fmt.Errorf("differs at %#x", at)
			}
		}
	}
}

// Two snapshots are under way at once: the second freezes while the first
// is neither copied nor read, and each holds the memory of its own freeze
// while writers rewrite all of it and the collector stops the world; with
// and without tracking (turned off while both are pending).
func TestCOWOverlap(t *testing.T) {
	const size = 32 << 20
	const chunk = 64 << 10
	for _, tracked := range []bool{false, true} {
		t.Run(fmt.Sprint("tracked=", tracked), func(t *testing.T) {
			mem, tr := newTestWith(t, size, NewCOW)
			fill(mem, 0, size, 1)
			if tracked {
				for range 2 { // armed, then all of it written
					if err := tr.Collect(size, func(s, e uint64) {}); err != nil {
						t.Fatal(err)
					}
					fill(mem, 0, size, 1)
				}
				if err := tr.Collect(size, func(s, e uint64) {}); err != nil {
					t.Fatal(err)
				}
			}
			a, err := tr.Freeze(size)
			if err != nil {
				t.Fatal(err)
			}
			// Some of it is written before the second freeze: faults copy
			// those blocks for a; the rest is still pending in a.
			const written = 4 * CopyBlock
			fill(mem, 0, written, 2)
			var needB []bool
			if tracked {
				needB = make([]bool, size/chunk)
				var n uint64
				if err := tr.Collect(size, func(s, e uint64) {
					for i := s / chunk; i < (e+chunk-1)/chunk; i++ {
						needB[i] = true
					}
					n += e - s
				}); err != nil {
					t.Fatal(err)
				}
				if n != written {
					t.Fatalf("Collect with a snapshot under way: %d bytes written, want %d", n, written)
				}
			}
			b := freezeBeside(t, tr, a, size)
			if tracked {
				// Tracking off with both snapshots pending: what they
				// still have to copy stays protected until copied.
				if err := tr.Disarm(); err != nil {
					t.Fatal(err)
				}
			}

			var wrote atomic.Int64
			stop := make(chan struct{})
			var ws sync.WaitGroup
			for i := range 2 {
				ws.Add(1)
				go func() { defer ws.Done(); hammer(mem, 3, uint64(i), stop, &wrote) }()
			}
			collectUntil(stop, &ws)
			errs := make(chan error, 2)
			go func() { errs <- verify(a, chunk, nil, func(int) uint64 { return 1 }) }()
			go func() {
				errs <- verify(b, chunk, needB, func(off int) uint64 {
					if off < written {
						return 2
					}
					return 1
				})
			}()
			errA, errB := <-errs, <-errs
			close(stop)
			ws.Wait()
			if errA != nil || errB != nil {
				t.Fatalf("snapshots: %v; %v", errA, errB)
			}
			faults, copied := tr.Faults()
			t.Logf("%d faults, %d blocks copied, %d writes", faults, copied, wrote.Load())

			// Both slots are free again: two more freezes side by side.
			collect := func() {
				if tracked { // a freeze protects only what Collect did not
					if err := tr.Collect(size, func(s, e uint64) {}); err != nil {
						t.Fatal(err)
					}
				}
			}
			fill(mem, 0, size, 4)
			collect()
			c, err := tr.Freeze(size)
			if err != nil {
				t.Fatal(err)
			}
			collect()
			d := freezeBeside(t, tr, c, size)
			fill(mem, 0, size, 5)
			if err := verify(d, chunk, nil, func(int) uint64 { return 4 }); err != nil {
				t.Fatal(err)
			}
			if err := verify(c, chunk, nil, func(int) uint64 { return 4 }); err != nil {
				t.Fatal(err)
			}
		})
	}
}
