package ckpt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stream sends k's epoch from src into dst value by value, as a replica
// host receives it; damage, if set, may change the k-th value on its way.
// It returns the ReplicaIn and the first error of Value or Add.
func stream(t *testing.T, src, dst *Store, k Key, epoch uint64, damage func(n int, v []byte)) (*ReplicaIn, error) {
	t.Helper()
	rx, err := streamTo(src, dst, k, epoch, damage)
	if rx == nil {
		t.Fatal(err)
	}
	return rx, err
}

// streamTo is stream for another goroutine than the test's: a nil
// ReplicaIn if none could begin.
func streamTo(src, dst *Store, k Key, epoch uint64, damage func(n int, v []byte)) (*ReplicaIn, error) {
	rx, need, err := beginStream(src, dst, k, epoch)
	if err != nil {
		return nil, err
	}
	return rx, feed(src, rx, need, damage)
}

// beginStream begins k's epoch from src as a replica in dst and returns
// what dst lacks of it.
func beginStream(src, dst *Store, k Key, epoch uint64) (*ReplicaIn, []Hash, error) {
	r, err := src.ReplicaOf(k, epoch)
	if err != nil {
		return nil, nil, err
	}
	rx, err := dst.BeginReplica(r.Manifest)
	if err != nil {
		return nil, nil, err
	}
	need, err := rx.Missing()
	if err != nil {
		rx.Abort()
		return nil, nil, err
	}
	return rx, need, nil
}

// feed gives rx the values need names, read from src; damage, if set,
// may change the n-th on its way.
func feed(src *Store, rx *ReplicaIn, need []Hash, damage func(n int, v []byte)) error {
	n := 0
	return src.ReadValues(need, func(h Hash, v []byte) error {
		buf, err := rx.Value(len(v))
		if err != nil {
			return err
		}
		copy(buf, v)
		if damage != nil {
			damage(n, buf)
		}
		n++
		return rx.Add(h, buf)
	})
}

// capturedOnce opens a source store holding epoch 1 of key "job", n
// random bytes made from seed, and an empty replica store of config cfg.
func capturedOnce(t *testing.T, n int, seed uint64) (cfg Config, src, dst *Store, k Key, mem []byte) {
	t.Helper()
	cfg = testConfig(t)
	src, dst = openTest(t, testConfig(t)), openTest(t, cfg)
	k = Key{Job: "job"}
	mem = make([]byte, n)
	fillRandom(mem, rand.New(rand.NewPCG(seed, seed+1)))
	capture(t, src, testMeta(k, 1), mem)
	return cfg, src, dst, k, mem
}

// capturedTwo captures epoch 1 of keys "a" and "b" in src, n random
// bytes each made from seed.
func capturedTwo(t *testing.T, src *Store, n int, seed uint64) (a, b Key, memA, memB []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	a, b = Key{Job: "a"}, Key{Job: "b"}
	memA, memB = make([]byte, n), make([]byte, n)
	fillRandom(memA, rng)
	fillRandom(memB, rng)
	capture(t, src, testMeta(a, 1), memA)
	capture(t, src, testMeta(b, 1), memB)
	return a, b, memA, memB
}

// commitStream streams k's epoch from src into dst and commits it.
func commitStream(t *testing.T, src, dst *Store, k Key, epoch uint64) {
	t.Helper()
	rx, err := stream(t, src, dst, k, epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readsBack(t *testing.T, s *Store, k Key, epoch uint64, want []byte) {
	t.Helper()
	m, err := s.Manifest(k, epoch)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if err := s.ReadMemory(m, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("epoch %d reads back differently on the replica", epoch)
	}
}

// TestReplicaInStreams: values given one by one land in the replica
// segment, and the replica reads back after a commit, after captures on
// the replica's store, and after the store is opened again.
func TestReplicaInStreams(t *testing.T) {
	cfg := testConfig(t)
	src, dst := openTest(t, testConfig(t)), openTest(t, cfg)
	k := Key{Job: "job", Worker: 1}
	rng := rand.New(rand.NewPCG(5, 6))
	mem := make([]byte, 256<<10)
	fillRandom(mem, rng)
	capture(t, src, testMeta(k, 1), mem)
	rx, err := stream(t, src, dst, k, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := rx.Commit(); err == nil {
		t.Fatal("a replica committed twice")
	}
	mem1 := bytes.Clone(mem)
	fillRandom(mem[4<<10:8<<10], rng)
	capture(t, src, testMeta(k, 2), mem)
	commitStream(t, src, dst, k, 2)
	for e := uint64(1); e <= 2; e++ { // the second from the first (storedFromBase)
		ms, _ := src.Manifest(k, e)
		md, err := dst.Manifest(k, e)
		if err != nil || md.StoredBytes != ms.StoredBytes || md.StoredBytes == 0 {
			t.Fatalf("epoch %d: stored bytes %d on the replica, %d at the source (%v)", e, md.StoredBytes, ms.StoredBytes, err)
		}
	}
	// A capture of another key on the replica's store shares its chunks.
	other := Key{Job: "other"}
	capture(t, dst, testMeta(other, 1), mem)
	readsBack(t, dst, k, 1, mem1)
	readsBack(t, dst, k, 2, mem)
	dst.Close()
	dst = openTest(t, cfg)
	readsBack(t, dst, k, 1, mem1)
	readsBack(t, dst, k, 2, mem)
	readsBack(t, dst, other, 1, mem)
	res, err := dst.Scrub()
	if err != nil || res.Damaged != 0 {
		t.Fatalf("scrub after reopen: %+v %v", res, err)
	}
}

// TestReplicaInDamagedMidStream: a value damaged on its way is refused in
// one line (by Value or Add once it is checked, and by Commit), and
// nothing of the replica is kept, whether the replica segment is new or
// already holds another replica.
func TestReplicaInDamagedMidStream(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	rng := rand.New(rand.NewPCG(7, 8))
	mems := map[Key][]byte{}
	for _, k := range []Key{{Job: "first"}, {Job: "second"}} {
		mems[k] = make([]byte, 1<<20) // 256 chunks
		fillRandom(mems[k], rng)
		capture(t, src, testMeta(k, 1), mems[k])
	}
	for _, k := range []Key{{Job: "first"}, {Job: "second"}} {
		before := storeDigest(t, dst)
		rx, err := stream(t, src, dst, k, 1, func(n int, v []byte) {
			if n == 20 {
				v[len(v)-1] ^= 1
			}
		})
		cerr := rx.Commit()
		if !errors.Is(cerr, ErrCorrupt) || strings.Contains(cerr.Error(), "\n") {
			t.Fatalf("%s: a damaged value: %v", k.Job, cerr)
		}
		if err != nil && err.Error() != cerr.Error() {
			t.Fatalf("%s: Add said %q, Commit %q", k.Job, err, cerr)
		}
		if storeDigest(t, dst) != before {
			t.Fatalf("%s: a refused replica changed the store", k.Job)
		}
		if _, err := dst.Manifest(k, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: a refused replica is listed: %v", k.Job, err)
		}
		// The next replica of the same checkpoint is whole.
		rx, err = stream(t, src, dst, k, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := rx.Commit(); err != nil {
			t.Fatal(err)
		}
		readsBack(t, dst, k, 1, mems[k])
	}
}

// TestReplicaInAbortAndCrash: an aborted replica keeps nothing; one whose
// values were written when its host stopped, before its commit, is gone
// when the store opens again, and the store takes replicas after it.
func TestReplicaInAbortAndCrash(t *testing.T) {
	cfg, src, dst, k, mem := capturedOnce(t, 128<<10, 9)
	before := storeDigest(t, dst)
	rx, err := stream(t, src, dst, k, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rx.Abort()
	if err := rx.Commit(); err == nil {
		t.Fatal("an aborted replica committed")
	}
	if storeDigest(t, dst) != before {
		t.Fatal("an aborted replica changed the store")
	}
	rx, err = stream(t, src, dst, k, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rx.finish(); err != nil { // every value written, no commit
		t.Fatal(err)
	}
	if rx.w == nil || rx.w.written == 0 {
		t.Fatal("no value was written before the commit")
	}
	dst.Close()
	dst = openTest(t, cfg)
	if storeDigest(t, dst) != before {
		t.Fatal("values of a replica never committed are left after Open")
	}
	rx, err = stream(t, src, dst, k, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rx.Commit(); err != nil {
		t.Fatal(err)
	}
	readsBack(t, dst, k, 1, mem)
}

// TestReplicaInConcurrent: two replicas arriving at once share the
// replica segment; one refused among them leaves the other whole, before
// and after Open, and a failed write refuses a replica in one line.
func TestReplicaInConcurrent(t *testing.T) {
	cfg := testConfig(t)
	src, dst := openTest(t, testConfig(t)), openTest(t, cfg)
	a, b, _, memB := capturedTwo(t, src, 512<<10, 11)
	ra, err := stream(t, src, dst, a, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := stream(t, src, dst, b, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ra.finish(); err != nil { // a's values are written before b's
		t.Fatal(err)
	}
	xs := append([]extent(nil), ra.w.xs...)
	ra.w.release() // as Abort: punched out, b's stay
	data, err := allocated(ra.w.f, dst.segs.repEnd)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		for at := alignUp(x.off); at+holeBlock <= x.end; at += holeBlock {
			for _, d := range data {
				if d.off <= at && at < d.end {
					t.Fatalf("block at %d of an aborted replica's values is still allocated", at)
				}
			}
		}
	}
	if err := rb.Commit(); err != nil {
		t.Fatal(err)
	}
	readsBack(t, dst, b, 1, memB)
	if _, err := dst.Manifest(a, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an aborted replica is listed: %v", err)
	}
	setFailpoint(func(name string) error {
		if name == "segment:write" {
			return errors.New("disk full")
		}
		return nil
	})
	ra, err = stream(t, src, dst, a, 1, nil)
	cerr := ra.Commit() // the values are written meanwhile
	setFailpoint(nil)
	if !errors.Is(cerr, ErrWrite) || strings.Contains(cerr.Error(), "\n") || !strings.Contains(cerr.Error(), "disk full") {
		t.Fatalf("a failed write: %v (Add said %v)", cerr, err)
	}
	dst.Close()
	dst = openTest(t, cfg)
	readsBack(t, dst, b, 1, memB)
	res, err := dst.Scrub()
	if err != nil || res.Damaged != 0 {
		t.Fatalf("scrub after reopen: %+v %v", res, err)
	}
	entries, err := os.ReadDir(dst.segs.dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("segments after reopen: %v %v", entries, err)
	}
}

// TestReplicaInLacking: a replica that was not given a chunk its store
// lacks is refused in one line and keeps nothing.
func TestReplicaInLacking(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	k := Key{Job: "job"}
	mem := make([]byte, 64<<10)
	fillRandom(mem, rand.New(rand.NewPCG(13, 14)))
	capture(t, src, testMeta(k, 1), mem)
	before := storeDigest(t, dst)
	r, err := src.ReplicaOf(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := dst.BeginReplica(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	need, err := rx.Missing()
	if err != nil || len(need) != 16 {
		t.Fatalf("missing: %d %v", len(need), err)
	}
	if err := src.ReadValues(need[:15], func(h Hash, v []byte) error {
		buf, err := rx.Value(len(v))
		if err != nil {
			return err
		}
		copy(buf, v)
		return rx.Add(h, buf)
	}); err != nil {
		t.Fatal(err)
	}
	err = rx.Commit()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), short(need[15][:])) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a lacking chunk: %v", err)
	}
	if storeDigest(t, dst) != before {
		t.Fatal("a refused replica changed the store")
	}
}

// TestReplicaInMissingFromBase: Missing looks up only the chunks that
// moved since the key's last checkpoint here, and looks up all of them
// once that checkpoint is gone; a damaged chunk is missing wherever it is.
func TestReplicaInMissingFromBase(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	k := Key{Job: "job"}
	rng := rand.New(rand.NewPCG(15, 16))
	mem := make([]byte, 128<<10) // 32 chunks
	fillRandom(mem, rng)
	capture(t, src, testMeta(k, 1), mem)
	commitStream(t, src, dst, k, 1)
	fillRandom(mem[8<<10:12<<10], rng)
	capture(t, src, testMeta(k, 2), mem)
	r, err := src.ReplicaOf(k, 2)
	if err != nil {
		t.Fatal(err)
	}
	missing := func() []Hash {
		t.Helper()
		rx, err := dst.BeginReplica(r.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Abort()
		m, err := rx.Missing()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := missing(); len(m) != 1 {
		t.Fatalf("%d chunks missing, 1 changed", len(m))
	}
	held := r.Chunks[0]
	dst.markBad(held)
	if m := missing(); len(m) != 2 || m[0] != held {
		t.Fatalf("a damaged chunk of the base: missing %d", len(m))
	}
	// The base's manifest and chunks gone behind the store's back.
	if err := dst.db.Update(func(tx *bolt.Tx) error {
		for _, h := range r.Chunks {
			tx.Bucket(bucketRefs).Delete(h[:])
		}
		return tx.Bucket(bucketManifests).Delete(manifestKey(k, 1))
	}); err != nil {
		t.Fatal(err)
	}
	if m := missing(); len(m) != 32 {
		t.Fatalf("the base gone: %d of 32 chunks missing", len(m))
	}
}

// TestReplicaOfCached: ReplicaOf decodes a manifest once for a source that
// sends an epoch and then the next against it, and an epoch rolled back
// and captured again is seen afresh.
func TestReplicaOfCached(t *testing.T) {
	src := openTest(t, testConfig(t))
	k := Key{Job: "job"}
	rng := rand.New(rand.NewPCG(17, 18))
	mem := make([]byte, 64<<10)
	fillRandom(mem, rng)
	capture(t, src, testMeta(k, 1), mem)
	capture(t, src, testMeta(k, 2), mem)
	r1, _ := src.ReplicaOf(k, 1)
	r2, _ := src.ReplicaOf(k, 2)
	if again, _ := src.ReplicaOf(k, 1); again != r1 {
		t.Fatal("epoch 1 decoded again")
	}
	if again, _ := src.ReplicaOf(k, 2); again != r2 {
		t.Fatal("epoch 2 decoded again")
	}
	if err := src.DeleteAfter(k, 1); err != nil {
		t.Fatal(err)
	}
	fillRandom(mem, rng)
	capture(t, src, testMeta(k, 2), mem)
	r2b, err := src.ReplicaOf(k, 2)
	if err != nil || r2b == r2 || r2b.Chunks[0] == r2.Chunks[0] {
		t.Fatalf("epoch 2 captured again reads as before: %v", err)
	}
}

// TestReplicaInPunchHoldsNoLock: while the values an older epoch of a
// replica no longer needs are punched out of the replica segment (the
// file system writes back the dirty pages around them, which may take a
// while), another replica is received and committed and a checkpoint is
// read: the punch holds none of the segments' locks.
func TestReplicaInPunchHoldsNoLock(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	k, other := Key{Job: "job"}, Key{Job: "other"}
	rng := rand.New(rand.NewPCG(13, 14))
	mem := make([]byte, 64<<10)
	fillRandom(mem, rng)
	for e := uint64(1); e <= 3; e++ { // the stores keep 3 epochs
		fillRandom(mem[:8<<10], rng)
		capture(t, src, testMeta(k, e), mem)
		commitStream(t, src, dst, k, e)
	}
	capture(t, src, testMeta(other, 1), mem)
	memOther := bytes.Clone(mem)
	var once sync.Once
	punching, punched := make(chan struct{}), make(chan struct{})
	setFailpoint(func(name string) error {
		if name == "segment:punch" {
			once.Do(func() { close(punching) })
			<-punched
		}
		return nil
	})
	defer setFailpoint(nil)
	defer func() {
		select {
		case <-punched:
		default:
			close(punched)
		}
	}()
	fillRandom(mem[:8<<10], rng)
	capture(t, src, testMeta(k, 4), mem)
	commitStream(t, src, dst, k, 4) // drops epoch 1, whose own values are punched out
	<-punching
	done := make(chan error, 1)
	go func() {
		rx, err := streamTo(src, dst, other, 1, nil)
		if rx != nil {
			if cerr := rx.Commit(); err == nil {
				err = cerr
			}
		}
		var m *Manifest
		if err == nil {
			m, err = dst.Manifest(k, 4)
		}
		if err == nil {
			err = dst.ReadMemory(m, make([]byte, len(mem)))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a replica's commit and a read waited for a punch of freed values")
	}
	close(punched)
	readsBack(t, dst, k, 4, mem)
	readsBack(t, dst, other, 1, memOther)
}

// TestReplicaInSyncedBeforeCommit: a replica's values are synced while its
// commit is built, and the commit waits for the sync: the replica is not
// listed before its values are durable, and a failed sync refuses it in
// one line and keeps nothing.
func TestReplicaInSyncedBeforeCommit(t *testing.T) {
	cfg, src, dst, k, mem := capturedOnce(t, 64<<10, 15)
	syncing, synced := make(chan struct{}), make(chan error)
	setFailpoint(func(name string) error {
		if name == "segment:sync" {
			close(syncing)
			return <-synced
		}
		return nil
	})
	defer setFailpoint(nil)
	rx, err := stream(t, src, dst, k, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() { committed <- rx.Commit() }()
	<-syncing
	if _, err := dst.Manifest(k, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replica is listed before its values are synced: %v", err)
	}
	synced <- errors.New("I/O error")
	err = <-committed
	if !errors.Is(err, ErrWrite) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "I/O error") {
		t.Fatalf("a failed sync: %v", err)
	}
	if _, err := dst.Manifest(k, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replica whose sync failed is listed: %v", err)
	}
	setFailpoint(nil)
	commitStream(t, src, dst, k, 1)
	dst.Close()
	dst = openTest(t, cfg)
	readsBack(t, dst, k, 1, mem)
}

// TestReplicaInDurable: on a store that syncs, replicas written in several
// batches read back, before and after Open, and an aborted one among them
// keeps nothing.
func TestReplicaInDurable(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoSync = false
	src, dst := openTest(t, testConfig(t)), openTest(t, cfg)
	a, b, memA, memB := capturedTwo(t, src, 3*replicaBatch, 17)
	ra, err := stream(t, src, dst, a, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitStream(t, src, dst, b, 1)
	ra.Abort()
	readsBack(t, dst, b, 1, memB)
	if _, err := dst.Manifest(a, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an aborted replica is listed: %v", err)
	}
	commitStream(t, src, dst, a, 1)
	dst.Close()
	dst = openTest(t, cfg)
	readsBack(t, dst, a, 1, memA)
	readsBack(t, dst, b, 1, memB)
	res, err := dst.Scrub()
	if err != nil || res.Damaged != 0 {
		t.Fatalf("scrub after reopen: %+v %v", res, err)
	}
}

// TestReplicaInStoreClosed: a replica still arriving when its store
// closes (its job ended on this host while a peer sent the last epoch's
// replica) fails in one line, "the store is closed", and writes nothing
// into files opened after the close, which may be given the closed
// segment files' descriptors.
func TestReplicaInStoreClosed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		already bool // the store holds a replica: its replica segment is open
	}{{"new replica segment", false}, {"open replica segment", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, src, dst, k, _ := capturedOnce(t, 1<<20, 21)
			if tc.already {
				commitStream(t, src, dst, Key{Job: "job"}, 1)
				mem := make([]byte, 1<<20)
				fillRandom(mem, rand.New(rand.NewPCG(22, 23)))
				capture(t, src, testMeta(k, 2), mem)
			}
			epoch := uint64(1)
			if tc.already {
				epoch = 2
			}
			rx, need, err := beginStream(src, dst, k, epoch)
			if err != nil {
				t.Fatal(err)
			}
			if len(need) == 0 {
				t.Fatal("the replica needs no value")
			}
			segs := func() []string {
				es, err := os.ReadDir(cfg.Path + ".seg")
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				var names []string
				for _, e := range es {
					names = append(names, e.Name())
				}
				return names
			}
			before := segs()
			if err := dst.Close(); err != nil {
				t.Fatal(err)
			}
			// Files opened now take the lowest free descriptors.
			var others []*os.File
			for i := range 8 {
				f, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				others = append(others, f)
			}
			err = feed(src, rx, need, nil)
			if err == nil {
				err = rx.Commit()
			} else {
				rx.Abort()
			}
			if after := segs(); !slices.Equal(after, before) {
				t.Fatalf("segment files %v before the close, %v after the replica", before, after)
			}
			if err == nil || !strings.Contains(err.Error(), "store is closed") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("a replica after its store closed: %v; want one line saying the store is closed", err)
			}
			for _, f := range others {
				if st, err := f.Stat(); err != nil || st.Size() != 0 {
					t.Fatalf("%s: %v bytes written into a file opened after the close (%v)", f.Name(), st.Size(), err)
				}
			}
		})
	}
}
