package tests

import (
	"bufio"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/librahost/librahost/host/web/webtest"
)

// rankLines splits output printed with --prefix into each rank's lines.
func rankLines(s string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		r, _, _ := strings.Cut(l, " ")
		out[r] = append(out[r], l)
	}
	return out
}

// sameByRank fails the test unless got has every rank's lines of want,
// in order.
func sameByRank(t *testing.T, what, got, want string) {
	t.Helper()
	g, w := rankLines(got), rankLines(want)
	if len(g) != len(w) {
		t.Fatalf("%s printed ranks %d, want %d:\n%s\nwant:\n%s", what, len(g), len(w), got, want)
	}
	for r, lines := range w {
		if !slices.Equal(g[r], lines) {
			t.Fatalf("%s: rank %s printed %q, want %q", what, r, g[r], lines)
		}
	}
}

// submitDetach submits with --detach and returns the job's ID, which it
// prints alone on stdout.
func submitDetach(t *testing.T, cluster, hosts string, args ...string) string {
	t.Helper()
	out, stderr, code := lh(t, append([]string{"submit", "--detach", "--cluster", cluster, "--hosts", hosts}, args...)...)
	id := strings.TrimSuffix(out, "\n")
	if code != 0 || len(id) != 16 || strings.Contains(id, "\n") || !strings.Contains(stderr, "job "+id+" started, detached") {
		t.Fatalf("submit --detach: exit %d\n%s%s", code, out, stderr)
	}
	return id
}

// A job submitted with --detach runs without its submitter: `attach`
// streams its output from the start to its end, each rank's as a
// submitter that stayed printed it, and exits with the job's exit code;
// `logs` prints the same after the end; a restarted host daemon (its
// --data kept) lists the jobs it ran in `status`, and its dashboard's
// report too, each with how it ended; what cannot be done is refused in
// one line.
func TestDetachAttachLogs(t *testing.T) {
	t.Parallel()
	cluster, hs := startCluster(t, "a", "b")
	hosts := hostList(hs)
	ticks := guest(t, "tests/testdata/ticks")

	want, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", hosts, "-n", "3", "--prefix", ticks, "--", "12")
	if code != 0 || len(rankLines(want)["[2]"]) != 12 {
		t.Fatalf("submit: exit %d\n%s%s", code, want, stderr)
	}
	id := submitDetach(t, cluster, hosts, "-n", "3", ticks, "--", "12")
	out, stderr, code := lh(t, "attach", id, "--prefix", "--cluster", cluster, "--hosts", hosts)
	if code != 0 || stderr != "" {
		t.Fatalf("attach: exit %d\n%s%s", code, out, stderr)
	}
	sameByRank(t, "attach", out, want)
	out, stderr, code = lh(t, "logs", id, "--prefix", "--cluster", cluster, "--hosts", hosts)
	if code != 0 || stderr != "" {
		t.Fatalf("logs: exit %d\n%s%s", code, out, stderr)
	}
	sameByRank(t, "logs", out, want)

	// attach exits with the job's exit code.
	exit3 := submitDetach(t, cluster, hosts, "-n", "1", guest(t, "tests/testdata/exit3.c"))
	out, stderr, code = lh(t, "attach", exit3, "--cluster", cluster, "--hosts", hosts)
	if code != 3 || out != "exiting with 3\n" || stderr != "" {
		t.Fatalf("attach of exit3: exit %d\n%s%s", code, out, stderr)
	}

	// Host a restarted on its --data lists both jobs, ended, exit code
	// and all, in status and in its dashboard's report.
	a := restartHostProc(t, cluster, hs[0], "--http", "127.0.0.1:0")
	hosts = a.addr + "," + hs[1].addr
	out, stderr, code = lh(t, "status", "--cluster", cluster, "--hosts", a.addr)
	if code != 0 || !strings.Contains(out, "job "+id+"  ended") || !strings.Contains(out, "from a (detached)") || !strings.Contains(out, "rank 0 exited (3)") ||
		!strings.Contains(out, "job "+exit3) {
		t.Fatalf("status of host a restarted: exit %d\n%s%s", code, out, stderr)
	}
	r, b := getReport(t, a.http)
	if len(r.Hosts) == 0 || r.Hosts[0].Status == nil || len(r.Hosts[0].Status.Jobs) != 3 {
		t.Fatalf("host a's report after its restart: %s", b)
	}
	for _, j := range r.Hosts[0].Status.Jobs {
		if j.ID == exit3 && (len(j.Workers) != 1 || j.Workers[0].Exit != 3 || j.Ended.IsZero()) {
			t.Fatalf("host a's report of job %s: %+v", exit3, j)
		}
	}
	// Its output is kept over the restart.
	out, _, code = lh(t, "logs", id, "--prefix", "--cluster", cluster, "--hosts", hosts)
	if code != 0 {
		t.Fatalf("logs after the restart: exit %d", code)
	}
	sameByRank(t, "logs after host a's restart", out, want)

	_, stderr, code = lh(t, "logs", "nosuchjob", "--cluster", cluster, "--hosts", hosts)
	if code != 1 {
		t.Fatalf("logs of no job: exit %d", code)
	}
	oneLineError(t, stderr, "no job nosuchjob on any of these hosts (librahost status lists the jobs)")
	_, stderr, code = lh(t, "attach", id, "--cluster", cluster, "--hosts", hs[1].addr)
	if code != 1 {
		t.Fatalf("attach asking host b only: exit %d", code)
	}
	oneLineError(t, stderr, "has ranks on host a too, which --hosts does not name")
	_, stderr, code = lh(t, "submit", "--detach", "--prefix", "--cluster", cluster, "--hosts", hosts, ticks)
	if code != 1 {
		t.Fatalf("--detach --prefix: exit %d", code)
	}
	oneLineError(t, stderr, "--prefix with --detach")
}

// A detached job runs on after submit has returned: `logs -f` and
// `attach --from now` follow it while it runs; cancelled, attach says so
// in one line and exits 1.
func TestDetachFollow(t *testing.T) {
	t.Parallel()
	cluster, hs := startCluster(t, "a", "b")
	hosts := hostList(hs)
	id := submitDetach(t, cluster, hosts, "-n", "2", guest(t, "tests/testdata/longjob"), "--", "600")
	// submit has returned; the job runs.
	rs := statusJSON(t, cluster, hosts)
	for _, r := range rs {
		if len(r.Status.Jobs) != 1 || r.Status.Jobs[0].ID != id || !r.Status.Jobs[0].Ended.IsZero() {
			t.Fatalf("host %s after submit --detach returned: %+v", r.Status.Host, r.Status.Jobs)
		}
	}
	follow := func(args ...string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
		cmd := exec.Command(librahost, append(args, "--cluster", cluster, "--hosts", hosts)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
		return cmd, bufio.NewReader(out), &stderr
	}
	// waitLine reads until a line that begins with prefix.
	waitLine := func(r *bufio.Reader, prefix string) string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("output ended before %q: %v", prefix, err)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
	}
	logsCmd, logsOut, _ := follow("logs", "-f", id)
	if l := waitLine(logsOut, "rank "); l != "rank 0 started\n" && l != "rank 1 started\n" {
		t.Fatalf("logs -f began with %q", l)
	}
	// Once logs -f has printed rank 0's tick 3, host a keeps it: attach
	// --from now begins past it.
	waitLine(logsOut, "rank 0 tick 3\n")
	attachCmd, attachOut, attachErr := follow("attach", "--from", "now", id)
	line := waitLine(attachOut, "rank 0 tick ")
	if k, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "rank 0 tick "))); err != nil || k <= 3 {
		t.Fatalf("attach --from now began with %q, printed before it began", line)
	}

	if out, stderr, code := lh(t, "cancel", "--job", id, "--cluster", cluster, "--hosts", hosts); code != 0 {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, stderr)
	}
	err := attachCmd.Wait()
	if code := attachCmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("attach of a cancelled job: exit %d (%v)\n%s", code, err, attachErr)
	}
	oneLineError(t, attachErr.String(), "job "+id+" cancelled: cancelled by `librahost cancel` from host ")
	if err := logsCmd.Wait(); err != nil {
		t.Fatalf("logs -f of a cancelled job: %v", err)
	}
}

// restartHostProc stops host h (SIGTERM) and starts it again on its
// --data, with args; the new process is returned.
func restartHostProc(t *testing.T, cluster string, h *hostProc, args ...string) *hostProc {
	t.Helper()
	h.killed = true // stopped here
	h.cmd.Process.Signal(syscall.SIGTERM)
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("host %s stopped: %v", h.name, err)
	}
	return startHostProc(t, cluster, nil, args, h.name, h.data)
}

// In headless chromium, the dashboard of a host daemon restarted on its
// --data lists the jobs it ran before, from its records: one's rank's
// exit code shown, why another was cancelled, with no console error.
func TestRecordsDashboardBrowser(t *testing.T) {
	// Not parallel: chromium and the job under it alone (tests/doc.go).
	ctx := webtest.Browser(t)
	cluster, hs := startCluster(t, "a")
	id := submitDetach(t, cluster, hs[0].addr, "-n", "1", guest(t, "tests/testdata/exit3.c"))
	if _, stderr, code := lh(t, "attach", id, "--cluster", cluster, "--hosts", hs[0].addr); code != 3 {
		t.Fatalf("attach: exit %d\n%s", code, stderr)
	}
	long := submitDetach(t, cluster, hs[0].addr, "-n", "1", guest(t, "tests/testdata/longjob"), "--", "600")
	if out, stderr, code := lh(t, "cancel", "--job", long, "--cluster", cluster, "--hosts", hs[0].addr); code != 0 {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, stderr)
	}
	a := restartHostProc(t, cluster, hs[0], "--http", "127.0.0.1:0")
	console := webtest.WatchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(a.http)); err != nil {
		t.Fatal(err)
	}
	webtest.WaitFor(t, ctx, time.Minute, `#live[data-live="live"]`)
	row := fmt.Sprintf(`[data-host="a"] tr[data-job="%s"]`, id)
	webtest.WaitFor(t, ctx, time.Minute, row+` .rank[data-s="exited"]`)
	label, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s .rank').textContent`, row)))
	if err != nil || label != "rank 0 (3)" {
		t.Fatalf("the job's rank reads %q (%v), want rank 0 (3)", label, err)
	}
	from, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s td[data-label="Submitter"]').textContent`, row)))
	if err != nil || from != "a (detached)" {
		t.Fatalf("the job's submitter reads %q (%v), want a (detached)", from, err)
	}
	// The cancelled one says why.
	why, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('[data-host="a"] tr[data-job="%s"] .why').textContent`, long)))
	if err != nil || !strings.HasPrefix(why, "cancelled by `librahost cancel` from host ") {
		t.Fatalf("the cancelled job's row says %q (%v)", why, err)
	}
	console.Check(t, ctx)
}
