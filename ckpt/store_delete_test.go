package ckpt

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestDeleteAfter(t *testing.T) {
	tests := []struct {
		name     string
		stored   []uint64 // epochs captured, in order
		after    uint64
		left     []uint64
		wantBase uint64 // epoch the next capture is compared against; 0: none
	}{
		{"middle", []uint64{1, 2, 3, 4, 5}, 3, []uint64{1, 2, 3}, 3},
		{"newest", []uint64{1, 2, 3}, 3, []uint64{1, 2, 3}, 3},
		{"oldest", []uint64{1, 2, 3}, 1, []uint64{1}, 1},
		{"all", []uint64{1, 2, 3}, 0, nil, 0},
		{"gap", []uint64{1, 3, 5, 7, 9}, 6, []uint64{1, 3, 5}, 5},
		{"beyond newest", []uint64{2, 4}, 10, []uint64{2, 4}, 4},
		{"no epochs", nil, 3, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Keep = 10
			s := openTest(t, cfg)
			k := Key{Job: "rewind", Worker: 1}
			other := Key{Job: "rewind", Worker: 2}
			mem := genMemory(256<<10, 21)
			n := len(mem) / cs(s)
			capture(t, s, testMeta(other, 1), mem) // shares chunks with k
			mems := map[uint64][]byte{}
			for i, e := range tt.stored {
				for c := range 3 { // every epoch changes 3 chunks
					mem[((i*3+c)%n)*cs(s)+7] ^= byte(e)
				}
				capture(t, s, testMeta(k, e), mem)
				mems[e] = bytes.Clone(mem)
			}
			before := storeDigest(t, s)

			if err := s.DeleteAfter(k, tt.after); err != nil {
				t.Fatal(err)
			}
			var got []uint64
			if infos, err := s.Epochs(k); err == nil {
				for _, in := range infos {
					got = append(got, in.Epoch)
				}
			} else if !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.left) {
				t.Fatalf("epochs left %v, want %v", got, tt.left)
			}
			if len(got) == len(tt.stored) && storeDigest(t, s) != before {
				t.Fatal("nothing to drop, but the store changed")
			}
			checkRefs(t, s)
			for _, e := range tt.left {
				m, err := s.Manifest(k, e)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(readBack(t, s, m), mems[e]) {
					t.Fatalf("epoch %d: memory differs", e)
				}
			}
			if m, err := s.Manifest(other, 1); err != nil || s.Verify(m) != nil {
				t.Fatalf("other key damaged: %v", err)
			}

			// The next capture continues from wantBase with one chunk changed.
			next := genMemory(256<<10, 21)
			if tt.wantBase != 0 {
				next = bytes.Clone(mems[tt.wantBase])
			}
			next[5*cs(s)+9] ^= 0x5a
			nonZero := len(nonZeroChunks(next, cs(s)))
			e := tt.after + 1
			st := capture(t, s, testMeta(k, e), next)
			want := nonZero
			if tt.wantBase != 0 {
				want = 1
			}
			if st.Changed != want {
				t.Fatalf("next capture changed %d chunks, want %d", st.Changed, want)
			}
			m, _, err := s.Latest(k, testBinding)
			if err != nil || m.Epoch != e || !bytes.Equal(readBack(t, s, m), next) {
				t.Fatalf("Latest after the next capture: %v, %v", m, err)
			}
			checkRefs(t, s)
		})
	}
}

// TestDeleteAfterInFlight calls DeleteAfter while a newer capture of the
// key is still being written: it waits for it and drops it.
func TestDeleteAfterInFlight(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "inflight"}
	mem := genMemory(256<<10, 22)
	capture(t, s, testMeta(k, 1), mem)
	release := make(chan struct{})
	setFailpoint(func(name string) error {
		if name == "commit:tx" {
			<-release
		}
		return nil
	})
	defer setFailpoint(nil)
	mem2 := bytes.Clone(mem)
	mem2[0] ^= 1
	p, err := s.Capture(testMeta(k, 2), mem2)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.DeleteAfter(k, 1) }()
	select {
	case err := <-done:
		t.Fatalf("DeleteAfter returned before the capture was durable: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m, _, err := s.Latest(k, testBinding)
	if err != nil || m.Epoch != 1 {
		t.Fatalf("Latest = %v, %v", m, err)
	}
	checkRefs(t, s)
}

func TestDeleteAfterFailpoint(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "rewind"}
	mem := genMemory(128<<10, 23)
	for e := uint64(1); e <= 3; e++ {
		mem[int(e)*cs(s)] ^= 0xff
		capture(t, s, testMeta(k, e), mem)
	}
	before := storeDigest(t, s)
	setFailpoint(func(n string) error {
		if n == "deleteafter:tx" {
			return errors.New("injected")
		}
		return nil
	})
	err := s.DeleteAfter(k, 1)
	setFailpoint(nil)
	if !errors.Is(err, ErrWrite) {
		t.Fatalf("DeleteAfter = %v", err)
	}
	if storeDigest(t, s) != before {
		t.Fatal("a failed DeleteAfter modified the store")
	}
	// The base is still epoch 3.
	mem[0] ^= 1
	if st := capture(t, s, testMeta(k, 4), mem); st.Changed != 1 {
		t.Fatalf("capture after a failed DeleteAfter changed %d chunks, want 1", st.Changed)
	}
}

// TestDeleteAfterReopen: the base survives a restart of the process.
func TestDeleteAfterReopen(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "rewind"}
	mem := genMemory(128<<10, 24)
	var mems [][]byte
	for e := uint64(1); e <= 3; e++ {
		mem[int(e)*cs(s)] ^= 0xff
		capture(t, s, testMeta(k, e), mem)
		mems = append(mems, bytes.Clone(mem))
	}
	if err := s.DeleteAfter(k, 2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, cfg)
	next := mems[1]
	next[9*cs(s)] ^= 1
	if st := capture(t, s, testMeta(k, 3), next); st.Changed != 1 {
		t.Fatalf("capture after reopen changed %d chunks, want 1", st.Changed)
	}
	checkRefs(t, s)
}

// TestDeleteEpoch drops one epoch of a key between others (a round
// abandoned while the one before it and the one after are kept): the
// others read back as they were, and the next capture compares against
// the newest left.
func TestDeleteEpoch(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 10
	s := openTest(t, cfg)
	k := Key{Job: "drop", Worker: 1}
	mem := genMemory(256<<10, 5)
	n := len(mem) / cs(s)
	mems := map[uint64][]byte{}
	for e := uint64(1); e <= 4; e++ {
		mem[(int(e)*3%n)*cs(s)+1] ^= byte(e)
		capture(t, s, testMeta(k, e), mem)
		mems[e] = bytes.Clone(mem)
	}
	if err := s.DeleteEpoch(k, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEpoch(k, 9); err != nil {
		t.Fatalf("an epoch not stored: %v", err)
	}
	got := storedEpochs(t, s, k)
	if !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Fatalf("epochs left %v", got)
	}
	checkRefs(t, s)
	for _, e := range got {
		m, err := s.Manifest(k, e)
		if err != nil || !bytes.Equal(readBack(t, s, m), mems[e]) {
			t.Fatalf("epoch %d differs: %v", e, err)
		}
	}
	next := bytes.Clone(mems[4])
	next[7*cs(s)] ^= 0x5a
	if st := capture(t, s, testMeta(k, 5), next); st.Changed != 1 {
		t.Fatalf("next capture changed %d chunks, want 1", st.Changed)
	}
}

// TestKeepDropsCommitRecord: an epoch a capture drops beyond Keep takes
// its commit record with it, even before the next commit record is
// written (a run killed between a rank's durable checkpoint and its
// commit record listed a record whose checkpoint was gone).
func TestKeepDropsCommitRecord(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 1
	s := openTest(t, cfg)
	k := Key{Job: "keep", Worker: 0}
	mem := genMemory(1<<20, 1)
	capture(t, s, testMeta(k, 1), mem)
	if err := s.CommitJob(Commit{Job: k.Job, Epoch: 1, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	capture(t, s, testMeta(k, 2), mem)
	cs, err := s.Commits(k.Job)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("epoch 1 dropped, its commit record kept: %+v", cs)
	}
	if err := s.CommitJob(Commit{Job: k.Job, Epoch: 2, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if cs, _ = s.Commits(k.Job); len(cs) != 1 || cs[0].Epoch != 2 {
		t.Fatalf("commit records after epoch 2's: %+v", cs)
	}
}

// TestKeepFrom: the Keep rule drops no epoch from a job's floor on (the
// committed epoch before its newest, or with Keep 1 its newest), however
// many newer ones there are; a later floor lets the older ones go; other
// jobs keep the plain rule.
func TestKeepFrom(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 2
	s := openTest(t, cfg)
	k, other := Key{Job: "floor", Worker: 1}, Key{Job: "plain", Worker: 1}
	mem := genMemory(64<<10, 9)
	epochs := func(k Key) []uint64 { return storedEpochs(t, s, k) }
	s.KeepFrom("floor", 2)
	for e := uint64(1); e <= 5; e++ {
		mem[int(e)] ^= 0xa5
		capture(t, s, testMeta(k, e), mem)
		capture(t, s, testMeta(other, e), mem)
	}
	if got := epochs(k); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("epochs kept with floor 2: %v", got)
	}
	if got := epochs(other); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("epochs kept without a floor: %v", got)
	}
	s.KeepFrom("floor", 1) // never back
	s.KeepFrom("floor", 5) // 2 is the committed epoch before it: kept
	capture(t, s, testMeta(k, 6), mem)
	if got := epochs(k); !slices.Equal(got, []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("epochs kept with 2 and 5 committed: %v", got)
	}
	s.KeepFrom("floor", 6)
	capture(t, s, testMeta(k, 7), mem)
	if got := epochs(k); !slices.Equal(got, []uint64{5, 6, 7}) {
		t.Fatalf("epochs kept with 5 and 6 committed: %v", got)
	}
	checkRefs(t, s)

	cfg = testConfig(t)
	cfg.Keep = 1
	one := openTest(t, cfg)
	one.KeepFrom("floor", 2)
	one.KeepFrom("floor", 3)
	for e := uint64(1); e <= 4; e++ {
		mem[int(e)] ^= 0xa5
		capture(t, one, testMeta(k, e), mem)
	}
	if got := storedEpochs(t, one, k); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("Keep 1, 3 committed: epochs kept %v", got)
	}
	checkRefs(t, one)
}

// storedEpochs returns the epochs of k in s, in order.
func storedEpochs(t *testing.T, s *Store, k Key) []uint64 {
	t.Helper()
	infos, err := s.Epochs(k)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, in := range infos {
		out = append(out, in.Epoch)
	}
	return out
}
