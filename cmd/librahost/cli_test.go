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
