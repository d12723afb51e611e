package main

import (
	"bytes"
	"strings"
	"testing"
)

// logs and attach without a job, or with two, print their usage and exit
// 2; a --from that is neither start nor now, and a job ID that cannot be
// one, are refused in one line before any host is asked.
func TestLogsAttachArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"logs"}, 2, "usage: librahost logs JOB"},
		{[]string{"attach", "j1", "j2"}, 2, "usage: librahost attach JOB"},
		{[]string{"attach", "j1", "--from", "middle"}, 1, "librahost attach: --from middle: want start or now"},
		{[]string{"logs", strings.Repeat("x", 65)}, 1, "bad job ID"},
	} {
		args := append(tc.args, "--hosts", "127.0.0.1:1", "--cluster", t.TempDir())
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || (code == 1 && strings.Count(errb.String(), "\n") != 1) {
			t.Errorf("%v: exit %d, stderr %q, want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
