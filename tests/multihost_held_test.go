package tests

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// heldHeat is samples/heat held at its end (holdJob), the job of the
// tests that kill hosts of a job while it runs: its module, the guest's
// arguments, the failure-free `run -n 6`'s output and the hold, which the
// job mounts at /hold.
type heldHeat struct {
	wasm    string
	args    []string // the guest's
	want    []byte   // `run -n 6`'s output
	release *jobHold
}

// newHeldHeat is heat of steps steps, printing every every steps, held
// at its end.
func newHeldHeat(t *testing.T, steps, every string) *heldHeat {
	t.Helper()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", steps, "-every", every}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	return &heldHeat{wasm: wasm, args: args, want: want, release: release}
}

// flags are submit's arguments for the job (after --cluster and
// --hosts): 6 workers checkpointed every 100 ms with the hold mounted,
// more flags, the module and the guest's arguments.
func (h *heldHeat) flags(more ...string) []string {
	a := append([]string{"-n", "6", "--checkpoint-every", "100ms", "--dir", h.release.dir + ":/hold:ro"}, more...)
	return append(append(a, h.wasm, "--"), h.args...)
}

// submit starts `librahost submit` of the job on hs (flags).
func (h *heldHeat) submit(t *testing.T, cluster string, hs []*hostProc, more ...string) *bgSubmit {
	t.Helper()
	return submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs)}, h.flags(more...)...)...)
}

// heldWordcount is samples/wordcount over 48 generated input files, its
// rank 0 held at its end (holdJob), for the tests that kill hosts of
// its job: the module, the input, the failure-free `run -n 6`'s output
// and result files, and the hold.
type heldWordcount struct {
	wasm    string
	input   string // the input files (each host gets a copy: wordcountHosts)
	wantOut string // `run -n 6`'s result files
	want    []byte // and its output
	release *jobHold
}

var wordcountArgs = []string{"-in", "/in", "-out", "/out", "-hold", "/hold/end"}

func newHeldWordcount(t *testing.T) *heldWordcount {
	t.Helper()
	w := &heldWordcount{wasm: guest(t, "samples/wordcount"), wantOut: t.TempDir()}
	gen := t.TempDir()
	jobRun(t, "1", w.wasm, "--dir", gen+":/data", "-gen", "48", "-words", "20000")
	w.input = filepath.Join(gen, "in")
	open, release := holdJob(t)
	w.release = release
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", w.input + ":/in:ro", "--dir", w.wantOut + ":/out",
		"--dir", open + ":/hold:ro", w.wasm, "--"}, wordcountArgs...)...)
	if code != 0 {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	w.want = []byte(want)
	return w
}

// submit starts `librahost submit` of the job on hs (wordcountHosts): 6
// workers checkpointed every 100 ms, in/ and out/ mounted from each
// host's directory, and more flags.
func (w *heldWordcount) submit(t *testing.T, cluster string, hs []*hostProc, more ...string) *bgSubmit {
	t.Helper()
	a := append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--checkpoint-every", "100ms",
		"--dir", "in:/in:ro", "--dir", "out:/out", "--dir", w.release.dir + ":/hold:ro"}, more...)
	return submitBg(t, append(append(a, w.wasm, "--"), wordcountArgs...)...)
}

// waitRanksEnded waits until status on hs shows each of ranks exited
// (once all of a host's have) and every host has committed two more
// epochs since, which hold them ended.
func waitRanksEnded(t *testing.T, cluster string, hs []*hostProc, sub *bgSubmit, ranks ...int) {
	t.Helper()
	for !exitedRanks(t, cluster, hostList(hs), ranks...) {
		select {
		case <-sub.done:
			t.Fatalf("submit ended: %v\n%s", sub.err, sub.errb.Bytes())
		case <-time.After(20 * time.Millisecond): // polls status
		}
	}
	committed := regexp.MustCompile(`epoch \d+ committed`)
	for _, h := range hs {
		n := len(waitHostLog(t, h, committed, sub.done))
		waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`(?s)(epoch \d+ committed.*){%d}`, n+2)), sub.done)
	}
}
