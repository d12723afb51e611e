package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMounts(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		in      string
		guest   string
		ro      bool
		wantErr string
	}{
		{dir, dir, false, ""},
		{dir + ":/data", "/data", false, ""},
		{dir + ":/data:ro", "/data", true, ""},
		{dir + ":/data:rw", "", false, "want HOST:GUEST[:ro]"},
		{dir + "/missing:/data", "", false, "is not a directory"},
		{dir + ":/data," + dir + ":/data/", "", false, "both mounted at /data"},
		{dir + "," + dir + ":" + dir, "", false, "both mounted at " + dir},
	} {
		ms, err := parseMounts(strings.Split(tc.in, ","))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(ms) != 1 || ms[0].GuestPath != tc.guest || ms[0].ReadOnly != tc.ro {
			t.Errorf("%q: %+v %v", tc.in, ms, err)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "Usage:"},
		{[]string{"help"}, 0, "Usage:"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"run"}, 2, "usage: librahost run"},
		{[]string{"run", "--env", "NOEQUALS", "x.wasm"}, 1, "want K=V"},
		{[]string{"checkpoint"}, 1, "--state is required"},
		{[]string{"ckpt", "frob", "--state", "x"}, 1, "unknown subcommand"},
		{[]string{"run", "/nonexistent/app.wasm"}, 1, "no such file"},
		{[]string{"run", "/nonexistent/app.wasm", "--env", "NOEQUALS"}, 1, "want K=V"},
		{[]string{"run", "/nonexistent/app.wasm", "-laps", "3"}, 2, "a guest's own flags go after --"},
		{[]string{"build", "/nonexistent/a.c", "-o", "a.wasm"}, 1, "librahost build: stat /nonexistent/a.c: no such file"},
		{[]string{"cluster", "add-host", t.TempDir() + "/none", "--hosts", "x", "c"}, 1, "no cluster CA"},
		{[]string{"run", "-n", "0", "x.wasm"}, 1, "-n 0: want a number of workers from 1"},
		{[]string{"run", "-n", "-1", "x.wasm"}, 1, "-n -1: want a number of workers from 1"},
		{[]string{"run", "-n", "100000", tinyModule(t, 0)}, 1, "-n 100000: 100000 workers need about 1562.5 GiB (16.0 MiB each) but this machine has"},
		{[]string{"run", "--checkpoint-every", "-1s", "x.wasm"}, 1, "--checkpoint-every must be positive"},
		{[]string{"restore", "--state", "st", "--checkpoint-every", "-1s"}, 1, "--checkpoint-every must be positive"},
		{[]string{"run", "--seed", "7", "x.wasm"}, 1, "--seed takes effect only with --deterministic"},
		{[]string{"submit", "--hosts", "a:1", "--cluster", "c", "-n", "0", "x.wasm"}, 1, "-n 0: want a number of workers"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		all := out.String() + errb.String()
		if code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("%v: exit %d, want %d; output %q, want %q", tc.args, code, tc.code, all, tc.out)
		}
	}
}

func TestClusterInit(t *testing.T) {
	dir := t.TempDir() + "/cluster"
	var out, errb bytes.Buffer
	if code := run([]string{"cluster", "init", dir, "--hosts", "a b=127.0.0.1"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"cluster", "init", dir, "--hosts", "a"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already exists") {
		t.Fatalf("second init: exit %d: %s", code, errb.String())
	}
	if code := run([]string{"cluster", "add-host", dir, "c=10.0.0.3"}, &out, &errb); code != 0 {
		t.Fatalf("add-host: exit %d", code)
	}
}

// Flags stand anywhere among the positional arguments, up to "--".
func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		o    string
		v    bool
		pos  string
		err  string
	}{
		{[]string{"-o", "app.wasm", "./pkg"}, "app.wasm", false, "./pkg", ""},
		{[]string{"./pkg", "-o", "app.wasm"}, "app.wasm", false, "./pkg", ""},
		{[]string{"a.c", "-v", "b.c", "--o=x.wasm"}, "x.wasm", true, "a.c b.c", ""},
		{[]string{"app.wasm", "--", "-o", "x", "-v"}, "", false, "app.wasm -o x -v", ""},
		{[]string{"app.wasm", "--", "--", "x"}, "", false, "app.wasm -- x", ""},
		{[]string{"-o", "--", "app.wasm", "-v"}, "--", true, "app.wasm", ""},
		{[]string{"--", "-v"}, "", false, "-v", ""},
		{[]string{"app.wasm", "-laps", "3"}, "", false, "", "flag provided but not defined: -laps"},
	} {
		var errb bytes.Buffer
		fs := newFlags("test", &errb)
		o := fs.String("o", "", "")
		v := fs.Bool("v", false, "")
		err := parse(fs, tc.args)
		if tc.err != "" {
			if err != errUsage || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("%q: err %v, printed %q; want one line with %q", tc.args, err, errb.String(), tc.err)
			}
			continue
		}
		if err != nil || *o != tc.o || *v != tc.v || strings.Join(fs.Args(), " ") != tc.pos {
			t.Errorf("%q: -o %q -v %v args %q err %v; want -o %q -v %v args %q", tc.args, *o, *v, fs.Args(), err, tc.o, tc.v, tc.pos)
		}
	}
}

// tinyModule writes a module with one memory of pages 64 KiB pages.
func tinyModule(t *testing.T, pages byte) string {
	p := filepath.Join(t.TempDir(), "tiny.wasm")
	b := []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00")
	if err := os.WriteFile(p, append(b, pages), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A job's workers must fit in the memory available: each costs its
// initial linear memory and workerOverhead.
func TestCheckWorkerMemory(t *testing.T) {
	meminfo := "MemTotal:        2097152 kB\nMemFree:          100 kB\nMemAvailable:    1048576 kB\n"
	for _, tc := range []struct {
		n     int
		pages byte
		err   string
	}{
		{64, 0, ""},
		{65, 0, "65 workers need about 1.0 GiB (16.0 MiB each) but this machine has 1.0 GiB available: at most 64 fit"},
		{60, 16, ""},
		{61, 16, "at most 60 fit"},
	} {
		module, err := os.ReadFile(tinyModule(t, tc.pages))
		if err != nil {
			t.Fatal(err)
		}
		err = checkWorkerMemory(tc.n, module, strings.NewReader(meminfo))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%d workers of %d pages: %v, want %q", tc.n, tc.pages, err, tc.err)
		}
	}
	if err := checkWorkerMemory(1<<16, nil, strings.NewReader("MemTotal: 1 kB\n")); err != nil {
		t.Errorf("no MemAvailable line: %v", err)
	}
	if err := checkWorkers(maxWorkers + 1); err == nil {
		t.Errorf("%d workers accepted", maxWorkers+1)
	}
}

func TestOverheadFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"20%", 0.2, true}, {"5", 0.05, true}, {"100%", 1, true}, {"off", 0, true},
		{"0", 0, false}, {"0%", 0, false}, {"150%", 0, false}, {"-5%", 0, false}, {"x", 0, false}, {"", 0, false},
	} {
		o := overheadFlag(0.5)
		err := o.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && float64(o) != tc.want) {
			t.Errorf("--checkpoint-overhead %q: %v, %v; want %v (ok %v)", tc.in, float64(o), err, tc.want, tc.ok)
		}
	}
	if o := overheadFlag(0.2); o.String() != "20%" {
		t.Errorf("default shown as %q", o.String())
	}
}
