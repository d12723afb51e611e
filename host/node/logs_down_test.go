package node

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// After a job over two hosts, one of them stopped: logs prints what the
// host that is up keeps of its ranks, each as the submitter printed it,
// and says in one line which host's output (of which ranks) is missing,
// and why; the outcome is the answering host's. A job whose hosts are all
// down is refused with why, in one line; a host of the job that --hosts
// does not name is still refused.
func TestLogsHostDown(t *testing.T) {
	ticks := testGuest(t, "../../tests/testdata/ticks")
	a, _, _ := listenAt(t, Config{Name: "a", DataDir: filepath.Join(t.TempDir(), "a")})
	b, stopB, bStopped := listenAt(t, Config{Name: "b", DataDir: filepath.Join(t.TempDir(), "b")})
	addrs := []string{a.Addr().String(), b.Addr().String()}
	cfg, out, _ := submitCfg(addrs, 3, ticks, "20")
	cfg.Prefix = true
	if code, err := Submit(context.Background(), cfg); code != 0 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	waitEnded(t, a)
	id := waitEnded(t, b)[0].ID
	var onB []string
	for _, w := range b.Status().Jobs[0].Workers {
		onB = append(onB, "["+strconv.Itoa(w.Rank)+"]")
	}
	stopB()
	<-bStopped

	lc, got, errOut := logsCfg(addrs, id)
	end, err := Logs(context.Background(), lc)
	if err != nil {
		t.Fatalf("logs with host b down: %v", err)
	}
	want := byRank(out.String())
	printed := byRank(got.String())
	for r, lines := range want {
		if slices.Contains(onB, r) {
			if printed[r] != nil {
				t.Errorf("rank %s of host b, which is down: printed %q", r, printed[r])
			}
		} else if !slices.Equal(printed[r], lines) {
			t.Errorf("rank %s: logs printed %q, the submitter %q", r, printed[r], lines)
		}
	}
	note := errOut.String()
	if len(onB) != 1 || strings.Count(note, "\n") != 1 ||
		!strings.HasPrefix(note, "librahost: job "+id+": the output host b keeps of rank "+strings.Trim(onB[0], "[]")+" is missing") ||
		!strings.Contains(note, "host "+addrs[1]+": down") {
		t.Fatalf("ranks %v on host b; logs said %q", onB, note)
	}
	if code, err := end.Outcome(); code != 0 || err != nil || len(end.Hosts) != 1 {
		t.Fatalf("outcome %d, %v of %+v", code, err, end)
	}

	lc, got, _ = logsCfg(addrs[1:], id)
	if _, err := Logs(context.Background(), lc); !errors.Is(err, ErrHostDown) || strings.Contains(err.Error(), "\n") || got.String() != "" {
		t.Fatalf("logs asking host b only, which is down: %v, printed %q", err, got)
	}
	lc, got, _ = logsCfg(addrs[:1], id)
	if _, err := Logs(context.Background(), lc); err == nil || !strings.Contains(err.Error(), "ranks on host b too") || got.String() != "" {
		t.Fatalf("logs asking host a only: %v, printed %q", err, got)
	}
}
