package jobrec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T, cfg Config) *DB {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func rec(id string, ended bool) Record {
	r := Record{ID: id, Module: "m.wasm", N: 2, Submitter: "a", Placement: []string{"a", "b"}, State: "running",
		Started: time.Unix(1000, 0).UTC(), Workers: []Worker{{Rank: 0, State: "running"}}}
	if ended {
		r.State, r.Ended = "ended", time.Unix(1010, 0).UTC()
		r.Workers[0] = Worker{Rank: 0, State: "exited", Exit: 3}
	}
	return r
}

// A record put is got back as it was, replaced by its next put, and kept
// when the records are opened again: those not ended are listed as such.
func TestRecordsReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"j1", "j2", "j3"} {
		if err := d.Put(rec(id, false)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Put(rec("j2", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
	d.Close()

	d = open(t, Config{Dir: dir})
	got, err := d.Get("j2")
	if err != nil || got.State != "ended" || got.Workers[0].Exit != 3 || !got.Ended.Equal(time.Unix(1010, 0)) {
		t.Fatalf("j2: %+v, %v", got, err)
	}
	un, err := d.Unended()
	if err != nil || len(un) != 2 || un[0].ID != "j1" || un[1].ID != "j3" {
		t.Fatalf("unended: %+v, %v", un, err)
	}
	all, _ := d.List(2, nil)
	if len(all) != 2 || all[0].ID != "j2" || all[1].ID != "j3" {
		t.Fatalf("newest 2: %+v", all)
	}
	if _, err := d.Get("nope"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("get nope: %v", err)
	}
	if err := d.Put(Record{}); err == nil {
		t.Fatal("a record without an ID was put")
	}
}

// Past Keep records, the oldest ended one goes with its output; a job
// that runs stays however old.
func TestRecordsKeep(t *testing.T) {
	d := open(t, Config{Keep: 3})
	d.Put(rec("run", false))
	for i := range 5 {
		id := fmt.Sprint("e", i)
		l, err := d.Create(id)
		if err != nil {
			t.Fatal(err)
		}
		l.Append(0, 1, 0, []byte("x\n"))
		d.Put(rec(id, true))
		d.Finish(id)
	}
	all, _ := d.List(0, nil)
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[run e3 e4]" {
		t.Fatalf("kept %v, want [run e3 e4]", ids)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.Dir, "output", "e2")); !os.IsNotExist(err) {
		t.Fatalf("output of e2 left: %v", err)
	}
	if _, err := d.Output("e4"); err != nil {
		t.Fatal(err)
	}
}

// Over MaxTotal, the output of the oldest ended jobs goes and their
// records say so; the newest's stays.
func TestRecordsMaxTotal(t *testing.T) {
	d := open(t, Config{MaxTotal: 250})
	for i := range 3 {
		id := fmt.Sprint("j", i)
		l, err := d.Create(id)
		if err != nil {
			t.Fatal(err)
		}
		l.Append(0, 1, 0, make([]byte, 100))
		d.Put(rec(id, true))
		if err := d.Finish(id); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := d.Get("j0")
	if !r.OutputGone {
		t.Fatalf("j0's output kept: %+v", r)
	}
	if _, err := d.Output("j0"); !errors.Is(err, ErrOutputGone) {
		t.Fatalf("output of j0: %v", err)
	}
	for _, id := range []string{"j1", "j2"} {
		if r, _ := d.Get(id); r.OutputGone {
			t.Fatalf("%s's output gone", id)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"id":"j","state":"ended","workers":[{"rank":0,"state":"exited","exit":1}]}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("error %v is not ErrDamaged", err)
			}
			return
		}
		if r.ID == "" || len(r.ID) > 64 {
			t.Fatalf("decoded a record of ID %q", r.ID)
		}
	})
}
