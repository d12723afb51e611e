package job

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/librahost/librahost/ckpt"
)

// readDelta brings a memory holding one capture to a later one, writing
// only the chunks that differ: changed ones, ones become zero, and the
// memory grown since.
func TestReadDelta(t *testing.T) {
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), ChunkSize: 4 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
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
