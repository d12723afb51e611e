package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/librahost/librahost/transport"
)

// A detached job runs with no submitter: SubmitDetached returns its ID,
// Logs following it from the start prints each rank's output whole and
// ends with the job, whose outcome is its exit code; a job that does
// not run says why in one line.
func TestSubmitDetached(t *testing.T) {
	ticks := testGuest(t, "../../tests/testdata/ticks")
	exit3 := testGuest(t, "../../tests/testdata/exit3.c")
	ds, _, logs := startDaemons(t, transport.Faults{}, "a", "b")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}

	cfg, _, _ := submitCfg(addrs, 3, ticks, "15")
	id, err := SubmitDetached(context.Background(), cfg)
	if err != nil || len(id) != 16 {
		t.Fatalf("detached: %q, %v", id, err)
	}
	lc, got, errOut := logsCfg(addrs, id)
	lc.Follow = true
	end, err := Logs(context.Background(), lc)
	if err != nil {
		t.Fatal(err)
	}
	ranks := byRank(got.String())
	for _, r := range []string{"[0]", "[1]", "[2]"} {
		if len(ranks[r]) != 15 || ranks[r][14] != r+" tick 14" {
			t.Fatalf("rank %s printed %q; stderr %q", r, ranks[r], errOut)
		}
	}
	if code, err := end.Outcome(); code != 0 || err != nil || end.Running() {
		t.Fatalf("outcome %d, %v of %+v", code, err, end)
	}
	if !strings.Contains(logs[0].String(), "job "+id+": submitted from here for a (detached)") {
		t.Fatalf("host a's log:\n%s", logs[0])
	}
	for _, d := range ds[:2] {
		if j := d.Status().Jobs[0]; j.ID != id || !j.Detached || j.Submitter != "a" {
			t.Fatalf("host %s: %+v", d.cfg.Name, j)
		}
	}

	cfg, _, _ = submitCfg(addrs, 1, exit3)
	id, err = SubmitDetached(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc, got, _ = logsCfg(addrs, id)
	lc.Follow = true
	end, err = Logs(context.Background(), lc)
	if code, oerr := end.Outcome(); err != nil || code != 3 || oerr != nil || got.String() != "[0] exiting with 3\n" {
		t.Fatalf("exit3: %d, %v, %v; printed %q", code, oerr, err, got)
	}

	// A module that does not compile fails the job once started: attach
	// says why in one line.
	cfg, _, _ = submitCfg(addrs, 2, []byte("not wasm"))
	id, err = SubmitDetached(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc, _, _ = logsCfg(addrs, id)
	lc.Follow = true
	end, err = Logs(context.Background(), lc)
	if code, oerr := end.Outcome(); err != nil || code != 1 || oerr == nil || !strings.Contains(oerr.Error(), "job "+id+" failed: ") || strings.Contains(oerr.Error(), "\n") {
		t.Fatalf("a bad module: %d, %v, %v", code, oerr, err)
	}

	cfg, _, _ = submitCfg(addrs, 2, ticks)
	cfg.Replicas = 1
	if _, err := SubmitDetached(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--replicas 1 without --checkpoint-every") {
		t.Fatalf("replicas without checkpoints detached: %v", err)
	}
}

func FuzzDecodeDetach(f *testing.F) {
	b, _ := encodeWithModule(detachMsg{Hosts: []string{"127.0.0.1:1"}, prepareMsg: prepareMsg{N: 2, Module: "m.wasm"}}, []byte("\x00asm"))
	f.Add(b)
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, module, err := decodeDetach(body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if len(m.Hosts) == 0 || m.N < 1 || len(module) > len(body) {
			t.Fatalf("decoded %+v", m)
		}
	})
}
