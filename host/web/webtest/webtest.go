// Package webtest drives the dashboard (host/web) in headless chromium,
// for tests: it starts the browser, or skips the test in one line where
// chromium is not installed, collects what the page writes to its console
// as errors, and waits for elements.
package webtest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser starts headless chromium for the test, or skips it where
// chromium is not installed. It ends with the test.
func Browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; scripts/test installs it)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 720))
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return ctx
}

// Console collects what the page writes to its console as errors
// (exceptions, console.error, failed loads).
type Console struct {
	mu     sync.Mutex
	errs   []string
	marks  map[string]chan struct{}
	mumark sync.Mutex
}

// WatchConsole starts collecting the console errors of the page of ctx.
func WatchConsole(ctx context.Context) *Console {
	c := &Console{marks: map[string]chan struct{}{}}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mumark.Lock()
			if ch, ok := c.marks[m.Text]; ok {
				close(ch)
				delete(c.marks, m.Text)
			}
			c.mumark.Unlock()
			if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError || m.Type == "warning" {
				c.mu.Lock()
				c.errs = append(c.errs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// Check fails t with the errors so far: it logs a mark in the page and
// waits until the mark is read, so that every message before it counts.
func (c *Console) Check(t *testing.T, ctx context.Context) {
	t.Helper()
	mark := fmt.Sprintf("librahost-test-mark-%d", time.Now().UnixNano())
	seen := make(chan struct{})
	c.mumark.Lock()
	c.marks[mark] = seen
	c.mumark.Unlock()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.log(%q)", mark))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("the page wrote to its console:\n%s", strings.Join(c.errs, "\n"))
	}
}

// WaitFor waits until the page has a visible element matching a CSS
// selector, for at most within; it fails t with the page's text if none
// comes.
func WaitFor(t *testing.T, ctx context.Context, within time.Duration, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.getElementById('hosts').innerText"))
		t.Fatalf("no %s within %s: %v\npage:\n%s", sel, within, err, html)
	}
}
