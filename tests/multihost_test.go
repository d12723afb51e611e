package tests

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostProc is a `librahost host` process.
type hostProc struct {
	name, addr string
	data       string // its --data directory
	http       string // http://ADDR/ with --http
	cmd        *exec.Cmd
	killed     bool // by the test (sigkill): its exit is no error
	stderr     *os.File
}

// startHostProcs starts one `librahost host` process per name, on
// loopback ports the system chooses, with env added to each; they are
// stopped with SIGTERM when the test ends.
func startHostProcs(t *testing.T, cluster string, env []string, names ...string) []*hostProc {
	t.Helper()
	return startHostProcsArgs(t, cluster, env, nil, names...)
}

// startHostProcsArgs is startHostProcs with more arguments to each host.
func startHostProcsArgs(t *testing.T, cluster string, env, args []string, names ...string) []*hostProc {
	t.Helper()
	var hs []*hostProc
	for _, n := range names {
		hs = append(hs, startHostProc(t, cluster, env, args, n, filepath.Join(t.TempDir(), n)))
	}
	return hs
}

// startHostProc starts host n on data (its --data), stopped with SIGTERM
// when the test ends.
func startHostProc(t *testing.T, cluster string, env, args []string, n, data string) *hostProc {
	t.Helper()
	return startHostProcIn(t, "", cluster, env, args, n, data)
}

// startHostProcIn is startHostProc with the host's working directory
// dir ("" for the test's own).
func startHostProcIn(t *testing.T, dir, cluster string, env, args []string, n, data string) *hostProc {
	t.Helper()
	errf, err := os.Create(filepath.Join(t.TempDir(), n+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(librahost, "host", "--listen", "127.0.0.1:0", "--data", data,
		"--cluster", cluster, "--name", n)
	cmd.Args = append(cmd.Args, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = errf
	dieWithTest(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hostProc{name: n, data: data, cmd: cmd, stderr: errf}
	t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- h.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !h.killed {
				t.Errorf("host %s: %v", n, err)
			}
		case <-time.After(time.Minute):
			// Its goroutines, for what it waits on.
			h.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				h.cmd.Process.Kill()
			}
			log, _ := os.ReadFile(errf.Name())
			t.Errorf("host %s did not stop on SIGTERM; its log:\n%s", n, log)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 6 || f[3] != "listening" {
		t.Fatalf("host %s said %q (%v)", n, line, err)
	}
	h.addr = f[5]
	if i := strings.Index(line, "http on "); i >= 0 {
		h.http = strings.TrimSpace(line[i+len("http on "):])
	}
	return h
}

// sigkill kills the host outright, as a machine that dies.
func (h *hostProc) sigkill() {
	h.killed = true
	h.cmd.Process.Kill()
}

// lose SIGKILLs the host and wipes its --data, as a lost machine.
func (h *hostProc) lose(t *testing.T) {
	t.Helper()
	h.sigkill()
	if err := os.RemoveAll(h.data); err != nil {
		t.Fatal(err)
	}
}

func hostList(hs []*hostProc) string {
	var a []string
	for _, h := range hs {
		a = append(a, h.addr)
	}
	return strings.Join(a, ",")
}

// Three hosts as separate processes run ring and pi (Go and C) submitted
// from a fourth; status lists the hosts, jobs and workers.
func TestMultiHostRingPi(t *testing.T) {
	t.Parallel()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcs(t, cluster, nil, "a", "b", "c")
	hosts := hostList(hs)
	for _, tc := range []struct {
		src  string
		n    string
		args []string
		want string
	}{
		{"samples/ring", "8", []string{"-laps", "40"}, "ring of 8: 40 laps, token 1120, every hop checked\n"},
		{"samples/pi", "6", []string{"-darts", "3000000"}, "pi ≈ 3.14"},
		{"samples/pi/c/pi.c", "5", []string{"2000000"}, "pi ~ 3.14"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			wasm := guest(t, tc.src)
			out, stderr, code := lh(t, append([]string{"submit", "--cluster", cluster, "--hosts", hosts, "-n", tc.n, wasm, "--"}, tc.args...)...)
			if code != 0 || !strings.HasPrefix(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			if strings.Contains(out, "workers") && !strings.Contains(out, "on "+tc.n+" workers") {
				t.Fatalf("stdout: %s", out)
			}
		})
	}
	// --prefix marks the lines with the rank that printed them.
	out, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", hosts, "-n", "4", "--prefix", guest(t, "samples/ring"), "--", "-laps", "5")
	if code != 0 || out != "[0] ring of 4: 5 laps, token 30, every hop checked\n" {
		t.Fatalf("exit %d: %q\n%s", code, out, stderr)
	}

	out, stderr, code = lh(t, "status", "--cluster", cluster, "--hosts", hosts)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"host a at", "host b at", "host c at", "ended", "8 workers", "rank 7 exited", "rank 2 exited"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
}

// With loss, duplication and reordering switched on in every host's job
// links (LIBRAHOST_FAULTS), a ring over three host processes still sees
// every hop.
func TestMultiHostUnderFaults(t *testing.T) {
	t.Parallel()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcs(t, cluster, []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1,seed=3"}, "a", "b", "c")
	out, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", hostList(hs), "-n", "3", guest(t, "samples/ring"), "--", "-laps", "25")
	if code != 0 || out != "ring of 3: 25 laps, token 75, every hop checked\n" {
		t.Fatalf("exit %d: %q\n%s", code, out, stderr)
	}
	b, _ := os.ReadFile(hs[0].stderr.Name())
	if !strings.Contains(string(b), "fault injection on job links: drop=0.2") {
		t.Fatalf("host a did not report its faults:\n%s", b)
	}
}

// A submitter or status with a certificate of another cluster, and a
// module that is not WebAssembly, each get one line and exit 1.
func TestMultiHostRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cluster, other := filepath.Join(dir, "cluster"), filepath.Join(dir, "other")
	for _, c := range []string{cluster, other} {
		if _, stderr, code := lh(t, "cluster", "init", c, "--hosts", "a b"); code != 0 {
			t.Fatal(stderr)
		}
	}
	hs := startHostProcs(t, cluster, nil, "a")
	ring := guest(t, "samples/ring")
	_, stderr, code := lh(t, "submit", "--cluster", other, "--hosts", hs[0].addr, "-n", "2", ring)
	if code != 1 {
		t.Fatalf("foreign submitter: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "host "+hs[0].addr)
	oneLineError(t, stderr, "refused: not this cluster's CA")
	// status tells a host of another cluster from one that is down.
	out, stderr, code := lh(t, "status", "--cluster", other, "--hosts", hs[0].addr)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, hs[0].addr+": refused: not this cluster's CA") {
		t.Fatalf("foreign status: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code = lh(t, "status", "--json", "--cluster", other, "--hosts", hs[0].addr)
	if code != 1 || !strings.Contains(out, `"state": "refused"`) {
		t.Fatalf("foreign status --json: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, code = lh(t, "submit", "--cluster", cluster, "--hosts", hs[0].addr, "-n", "1", filepath.Join(dir, "cluster", "ca.crt"))
	if code != 1 {
		t.Fatalf("not wasm: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "not a WebAssembly module")
}
