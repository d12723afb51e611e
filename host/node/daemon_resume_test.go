package node

import (
	"cmp"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
)

// A host does not offer a resume the rank checkpoints of an epoch a check
// there refused (a damaged chunk): the resume goes on from the committed
// epoch before it, or from the same epoch if another host given holds it.
func TestHoldsLeavesOutRefused(t *testing.T) {
	d := &Daemon{cfg: Config{Name: "b", DataDir: t.TempDir(), Log: io.Discard}}
	spec := prepareMsg{Job: "j1", N: 2, Placement: []string{"a", "b"}, CheckpointEvery: 1, Module: "m.wasm"}
	dir := jobDir(d.cfg.DataDir, "j1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := saveSpec(dir, spec, []byte("\x00asm\x01\x00\x00\x00")); err != nil {
		t.Fatal(err)
	}
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(dir, "ckpt.db")})
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, 1<<16)
	for e := uint64(1); e <= 3; e++ {
		for r := range 2 {
			mem[0] = byte(e)
			p, err := store.Capture(ckpt.Meta{Key: ckpt.Key{Job: shareKeyJob, Worker: uint32(r)}, Epoch: e, Host: []byte("h")}, mem)
			if err == nil {
				err = p.Wait()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, driver.RefusedFile), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := d.holds("j1")
	if h.Error != "" || h.NotHere != "" {
		t.Fatal(h.Error, h.NotHere)
	}
	got := slices.Clone(h.Held)
	slices.SortFunc(got, func(a, b heldCkpt) int { return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Rank, b.Rank)) })
	want := []heldCkpt{{0, 1}, {1, 1}, {0, 2}, {1, 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("held %v, want %v (epoch 3 refused)", got, want)
	}

	rec := func(e uint64) *ckpt.CommitRecord {
		return &ckpt.CommitRecord{Epoch: e, Place: []ckpt.HostID{0, 1}}
	}
	h.Records = []*ckpt.CommitRecord{rec(2), rec(3)}
	p, err := planResume("j1", []string{"b"}, []holdsMsg{h})
	if err != nil || p.resume.Epoch != 2 {
		t.Fatalf("resumes from epoch %d (%v), want 2", p.resume.Epoch, err)
	}
	// Host a holds epoch 3 undamaged: it is resumed from there.
	a := holdsMsg{Spec: h.Spec, Module: h.Module, Records: h.Records, Held: []heldCkpt{{0, 3}, {1, 3}}}
	p, err = planResume("j1", []string{"b", "a"}, []holdsMsg{h, a})
	if err != nil || p.resume.Epoch != 3 || !slices.Equal(p.placement, []string{"a", "a"}) {
		t.Fatalf("resumes from epoch %d on %v (%v), want 3 on a", p.resume.Epoch, p.placement, err)
	}
}
