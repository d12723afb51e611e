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
