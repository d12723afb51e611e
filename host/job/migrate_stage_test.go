package job

import (
	"bytes"
	"context"
	"testing"

	"github.com/librahost/librahost/ckpt"
)

// readDelta brings a memory holding one capture to a later one, writing
// only the chunks that differ: changed ones, ones become zero, and the
// memory grown since.
func TestReadDelta(t *testing.T) {
	store := testStore(t, ckpt.Config{ChunkSize: 4 << 10, NoSync: true})
	const cs = 4 << 10
	early := make([]byte, 8*cs)
	for i := range early {
		early[i] = byte(i/cs + 1)
	}
	late := make([]byte, 10*cs)
	copy(late, early)
	late[2*cs] = 0xee        // changed
	clear(late[5*cs : 6*cs]) // became zero
	late[9*cs+7] = 0x11      // in the memory grown since
	k := ckpt.Key{Job: "t", Worker: 0}
	var ms []*ckpt.Manifest
	for e, mem := range [][]byte{early, late} {
		p, err := store.Capture(ckpt.Meta{Key: k, Epoch: uint64(e + 1)}, mem)
		if err == nil {
			err = p.Wait()
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := store.Manifest(k, uint64(e+1))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	j := &jobRun{store: store}
	mem := make([]byte, len(late))
	copy(mem, early)
	if err := j.readDelta(ms[0], ms[1], mem); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem, late) {
		t.Fatal("the memory brought up to the later capture differs from it")
	}
	// From nothing: the whole capture.
	clear(mem)
	if err := j.readDelta(nil, ms[1], mem); err != nil || !bytes.Equal(mem, late) {
		t.Fatalf("the whole capture read into a zeroed memory differs from it (%v)", err)
	}
}

// A round of a move whose cancel overtook it (DropStaged after the
// round's stream took its generation) makes no worker here; a round of
// the move under way does.
func TestMigrationInAfterDrop(t *testing.T) {
	store := testStore(t, ckpt.Config{NoSync: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Share{}
	r := &shareRun{s: s, j: &jobRun{store: store}}
	r.migs.init()
	r.migs.ctx, r.migs.rc.Module = ctx, []byte("\x00asm")
	s.run.Store(r)

	stale := s.StageGen(1)
	s.DropStaged(1) // the move's cancel
	s.MigrationIn(1, stale)
	if r.migs.staged[1] != nil {
		t.Fatal("a round of a cancelled move staged a worker")
	}
	s.MigrationIn(1, s.StageGen(1))
	if r.migs.staged[1] == nil {
		t.Fatal("a round of the move under way staged nothing")
	}
	if s.DropStaged(1); r.migs.staged[1] != nil {
		t.Fatal("DropStaged left the worker made ahead")
	}
}
