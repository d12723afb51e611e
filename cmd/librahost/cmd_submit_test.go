package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSubmitCheckpointFlags: --checkpoint-every and --replicas values
// that cannot work are refused in one line naming the flag, before
// anything starts.
func TestSubmitCheckpointFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--checkpoint-every", "-1s"}, "--checkpoint-every -1s: want more than 0"},
		{[]string{"--replicas", "1"}, "--replicas 1 without --checkpoint-every"},
		{[]string{"--checkpoint-every", "1s", "--replicas", "0"}, "--replicas 0: want 1 or more"},
		{[]string{"--checkpoint-every", "1s", "--replicas", "3"}, "--replicas 3: a job on 3 hosts can keep each checkpoint on at most 2 other hosts"},
	} {
		args := append(append([]string{"submit", "--hosts", "a:1,b:1,c:1", "--cluster", "c"}, tc.args...), "x.wasm")
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := strings.TrimSuffix(errb.String(), "\n")
		if code != 1 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestSubmitResumeFlags: submit --resume takes no module and no flag
// that would change the job (its hosts kept it as submitted), refused in
// one line before any host is asked.
func TestSubmitResumeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "4"}, "-n with --resume: a resumed job runs as it was submitted"},
		{[]string{"--checkpoint-every", "1s"}, "--checkpoint-every with --resume"},
		{[]string{"--detach"}, "--detach with --resume"},
		{[]string{"x.wasm"}, "x.wasm with --resume: a resumed job runs the module it was submitted with"},
		{[]string{"--failure-timeout", "0s"}, "--failure-timeout 0s: want more than 0"},
	} {
		args := append([]string{"submit", "--resume", "0123456789abcdef", "--hosts", "a:1,b:1", "--cluster", "c"}, tc.args...)
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := strings.TrimSuffix(errb.String(), "\n")
		if code != 1 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
