package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestFailureTimeoutFlag: a --failure-timeout that is not positive is
// refused in one line by host and submit, before anything starts.
func TestFailureTimeoutFlag(t *testing.T) {
	for _, args := range [][]string{
		{"host", "--listen", "127.0.0.1:0", "--data", "d", "--cluster", "c", "--failure-timeout", "0"},
		{"host", "--listen", "127.0.0.1:0", "--data", "d", "--cluster", "c", "--failure-timeout", "-1s"},
		{"submit", "--hosts", "a:1", "--cluster", "c", "--failure-timeout", "0s", "x.wasm"},
		{"submit", "--hosts", "a:1", "--cluster", "c", "--failure-timeout", "-2s", "x.wasm"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := strings.TrimSuffix(errb.String(), "\n")
		if code != 1 || !strings.Contains(msg, "--failure-timeout") || !strings.Contains(msg, "want more than 0") || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
