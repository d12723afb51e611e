package tests

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/librahost/librahost/host/web/webtest"
)

var recoveryScreenshot = flag.String("recovery-screenshot", "", "write TestDashboardRecovery's screenshot of host a's dashboard after the recovery to this `file` (docs/dashboard-recovery.png)")

// TestDashboardRecovery: a job over three host processes (checkpoints,
// one replica of each rank) loses host c, SIGKILLed after its second
// committed epoch with its --data wiped. In headless chromium host a's
// dashboard, with no console error, shows c down and the job's recovery
// on a and on b: incarnation 1, host c lost, the committed epoch (2 or
// later) it rolled back to, c's ranks 2 and 5 restarted on a, and the
// time it took; a's row of the job lists ranks 2 and 5 with its own.
// Hosts a's and b's /metrics count no recovery before the
// kill and one, timed, after it.
func TestDashboardRecovery(t *testing.T) {
	// Not parallel: chromium and the job under it alone (tests/doc.go).
	ctx := webtest.Browser(t)
	j := startHeldJob(t, "--http", "127.0.0.1:0")
	hs, sub, id, release := j.hosts, j.sub, j.id, j.release

	console := webtest.WatchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(hs[0].http)); err != nil {
		t.Fatal(err)
	}
	webtest.WaitFor(t, ctx, time.Minute, `#live[data-live="live"]`)
	webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`section[data-host="c"] tr[data-job=%q]`, id))
	console.Check(t, ctx)

	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), sub.done)
	for _, h := range hs[:2] {
		checkRecoveries(t, h, "text/plain", 0)
	}
	hs[2].lose(t)
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in \d+ ms`), sub.done)

	// The page follows the hosts' status every 500 ms; asking c, which
	// is down, takes up to 2 s of each.
	row := func(host string) string {
		return fmt.Sprintf(`section[data-host=%q] [data-recoveries=%q] tr[data-inc="1"][data-status="recovered"][data-lost="c"]`, host, id)
	}
	webtest.WaitFor(t, ctx, time.Minute, row("a"))
	webtest.WaitFor(t, ctx, time.Minute, row("b"))
	webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`section[data-host=%q] [data-s="down"]`, hs[2].addr))
	cell := func(host, label string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`document.querySelector('%s td[data-label="%s"]').textContent`, row(host), label)))
		if err != nil {
			t.Fatalf("host %s's recovery: %s: %v", host, label, err)
		}
		return v
	}
	m := regexp.MustCompile(`^epoch (\d+)$`).FindStringSubmatch(cell("a", "Rolled back to"))
	if m == nil {
		t.Fatalf("host a's recovery rolled back to %q", cell("a", "Rolled back to"))
	}
	if e, _ := strconv.Atoi(m[1]); e < 2 {
		t.Errorf("rolled back to epoch %d, want 2 or later", e)
	}
	if b := cell("b", "Rolled back to"); b != m[0] {
		t.Errorf("host b rolled back to %q, host a to %q", b, m[0])
	}
	if v := cell("a", "Restarted here"); v != "rank 2, rank 5" {
		t.Errorf("host a restarted %q, want c's ranks 2 and 5", v)
	}
	// Host a's row of the job lists them among its ranks.
	ranks, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`[...document.querySelectorAll('section[data-host="a"] tr[data-job=%q] .rank')].map(r => r.textContent).join(', ')`, id)))
	if err != nil || ranks != "rank 0, rank 2, rank 3, rank 5" {
		t.Errorf("host a's ranks of the job: %q (%v), want 0, 2, 3 and 5", ranks, err)
	}
	if v := cell("b", "Restarted here"); v != "" {
		t.Errorf("host b restarted %q, want none", v)
	}
	for _, h := range []string{"a", "b"} {
		if v := cell(h, "Time to recover"); !regexp.MustCompile(`^[0-9.]+ m?s$`).MatchString(v) {
			t.Errorf("host %s's time to recover: %q", h, v)
		}
	}
	console.Check(t, ctx)
	if *recoveryScreenshot != "" {
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*recoveryScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, h := range hs[:2] {
		checkRecoveries(t, h, "text/plain; version=0.0.4", 1)
	}
	release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("host c lost: submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
}

// checkRecoveries checks that host h's /metrics (asked with accept, which
// no scrape before asked with: the answer is new) counts n recoveries,
// each timed.
func checkRecoveries(t *testing.T, h *hostProc, accept string, n float64) {
	t.Helper()
	f := scrape(t, h.http, accept)
	if v := f.Must(t, "librahost_job_recoveries_total"); v != n {
		t.Errorf("host %s: %v recoveries, want %v", h.name, v, n)
	}
	if v := f.Must(t, "librahost_recovery_duration_seconds"); v != n {
		t.Errorf("host %s: %v recoveries timed, want %v", h.name, v, n)
	}
	if s := f["librahost_recovery_duration_seconds"].Metric[0].Histogram.GetSampleSum(); (s > 0) != (n > 0) {
		t.Errorf("host %s: %v recoveries took %v s in all", h.name, n, s)
	}
}

// heldJob is heat over hosts a, b and c: 6 ranks, checkpointed every
// 100 ms with one replica of each rank, a host declared lost after 15 s
// of silence, rank 0 held at its end until release is opened (holdJob).
type heldJob struct {
	cluster string
	hosts   []*hostProc
	sub     *bgSubmit
	id      string
	release *jobHold
}

// startHeldJob starts the hosts, with hostArgs each, and submits the job.
func startHeldJob(t *testing.T, hostArgs ...string) heldJob {
	t.Helper()
	wasm := guest(t, "samples/heat")
	_, release := holdJob(t)
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcsArgs(t, cluster, nil, hostArgs, "a", "b", "c")
	// A loaded machine can leave a host process unscheduled for longer
	// than the default failure timeout (2 s): only c's death is to be
	// taken for a loss.
	sub := submitBg(t, "--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--checkpoint-every", "100ms",
		"--replicas", "1", "--failure-timeout", "15s", "--dir", release.dir+":/hold:ro", wasm, "--", "-hold", "/hold/end", "-steps", "400", "-every", "20")
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	return heldJob{cluster, hs, sub, id, release}
}
