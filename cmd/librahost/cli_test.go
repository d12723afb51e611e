package main

import (
	"bytes"
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
	} {
		ms, err := parseMounts([]string{tc.in})
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
		{[]string{"build", "/nonexistent/a.c", "-o", "a.wasm"}, 1, "no such file"},
		{[]string{"cluster", "add-host", t.TempDir() + "/none", "--hosts", "x", "c"}, 1, "no cluster CA"},
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
