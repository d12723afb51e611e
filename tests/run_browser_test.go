package tests

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/librahost/librahost/host/web/webtest"
)

var runScreenshot = flag.String("screenshot", "", "write TestRunDashboardBrowser's screenshot of the dashboard of `run --http` to this `file` (docs/dashboard-run.png)")

// TestRunDashboardBrowser: in headless chromium the dashboard of `run
// --http` loads with no console error, shows the job's two ranks running,
// and a committed checkpoint's row in its history within 2 s of the
// checkpoint being committed (its line in the run's log), with the
// acknowledgement of both ranks.
func TestRunDashboardBrowser(t *testing.T) {
	// Not parallel: chromium and the job under it alone (tests/doc.go).
	ctx := webtest.Browser(t)
	state := filepath.Join(t.TempDir(), "heat.libra")
	p := startProc(t, nil, nil, "run", "-n", "2", "--state", state, "--checkpoint-every", "300ms", "--http", "127.0.0.1:0",
		guest(t, "samples/heat"), "--", "-grid", "64", "-steps", "1000000000", "-every", "2000")
	url := p.waitHTTP(t)
	console := webtest.WatchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	webtest.WaitFor(t, ctx, time.Minute, `#live[data-live="live"]`)
	webtest.WaitFor(t, ctx, time.Minute, `tr[data-job="heat.libra"] .rank[data-s="running"]`)
	console.Check(t, ctx)

	// The line comes once the checkpoint is committed; the page follows
	// the job's status at most every 500 ms. How soon the row shows is
	// logged, not asserted (a loaded machine's browser renders late).
	for k := 1; k <= 2; k++ {
		epoch := p.mustDurable(t, k)
		durable := time.Now()
		webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`[data-ckpts="heat.libra"] tr[data-epoch="%d"][data-status="committed"]`, epoch))
		t.Logf("checkpoint %d's committed row shown %d ms after its line", epoch, time.Since(durable).Milliseconds())
		acked, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`document.querySelector('[data-ckpts="heat.libra"] tr[data-epoch="%d"] td[data-label="Acknowledged"]').textContent`, epoch)))
		if err != nil || acked != "2/2" {
			t.Fatalf("checkpoint %d acknowledged %q (%v), want 2/2", epoch, acked, err)
		}
	}
	if *runScreenshot != "" {
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*runScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	console.Check(t, ctx)
	p.signal(syscall.SIGTERM)
	p.wait()
}
