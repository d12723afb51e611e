package node

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/transport"
)

// blockedWriter takes nothing until release is closed, as a submitter's
// stdout that nobody reads.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// CancelJob stops a job whose workers are stuck writing output that the
// submitter does not take, and answers once they have stopped.
func TestCancelWhileOutputBlocked(t *testing.T) {
	g := testGuest(t, "../../tests/testdata/longjob")
	addrs, _, logs := startHosts(t, transport.Faults{}, "a", "b")
	cfg, _, _ := submitCfg(addrs, 2, g, "600", "flood")
	release := make(chan struct{})
	cfg.Stdout = blockedWriter{release}
	res := submitAsync(cfg)
	defer func() {
		close(release)
		res.wait(t)
	}()
	id := waitRunning(t, cfg.Client, addrs)
	waitStuckIn(t, "host/node.output.WriteGuest")
	sts, errs, err := CancelJob(context.Background(), cfg.Client, addrs, id)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range sts {
		if errs[i] != nil || st.State != stateCancelled || len(st.Workers) != 1 || st.Workers[0].State != workerStopped {
			t.Fatalf("host %s: %+v, %v\nlogs:\n%s%s", addrs[i], st, errs[i], logs[0], logs[1])
		}
	}
}

// CancelJob stops a job that its submitter prepared but never started.
func TestCancelBeforeStart(t *testing.T) {
	addrs, _, _ := startHosts(t, transport.Faults{}, "a")
	c, h := dialAsB(t, addrs[0])
	ctx := context.Background()
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := encodePrepare(prepareMsg{Job: "j1", N: 1, Placement: []string{"a"}, Module: "m.wasm"}, []byte("\x00asm\x01\x00\x00\x00"))
	if err := writeMsg(str, msgPrepare, body); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := readMsg(str); err != nil || typ != msgReady {
		t.Fatalf("%s %v", typ, err)
	}
	sts, errs, err := CancelJob(ctx, c, addrs, "j1")
	if err != nil || errs[0] != nil || sts[0].State != stateCancelled {
		t.Fatalf("%+v %v %v", sts, errs, err)
	}
	// The submitter hears why.
	typ, b, err := readMsg(str)
	if err != nil || typ != msgError || !strings.Contains(string(b), "cancelled by `librahost cancel` from host b") {
		t.Fatalf("%s %q %v", typ, b, err)
	}
	if _, errs, _ := CancelJob(ctx, c, addrs, "j2"); !errors.Is(errs[0], ErrNoJob) {
		t.Fatalf("a job that is not there: %v", errs[0])
	}
}

// waitRunning waits for a job to run on every host and returns its ID.
func waitRunning(t *testing.T, c Client, addrs []string) string {
	t.Helper()
	for {
		sts, errs, err := QueryStatus(context.Background(), c, addrs)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for i, st := range sts {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if len(st.Jobs) == 1 && st.Jobs[0].State == stateRunning {
				running++
			}
		}
		if running == len(addrs) {
			return sts[0].Jobs[0].ID
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStuckIn waits until one goroutine of this process is seen waiting
// (not running) inside function fn in ten stack dumps in a row: a write
// that waits for flow control rather than for its turn to be sent.
func waitStuckIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<22)
	last, seen := "", 0
	for seen < 10 {
		n := runtime.Stack(buf, true)
		cur := ""
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn+"(") && !strings.Contains(head, "[running]") && !strings.Contains(head, "[runnable]") {
				cur, _, _ = strings.Cut(head, " [")
				break
			}
		}
		if cur != "" && cur == last {
			seen++
		} else {
			seen = 0
		}
		last = cur
		time.Sleep(20 * time.Millisecond)
	}
}
