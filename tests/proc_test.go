package tests

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a librahost process started by a test. Tests synchronise with it
// only through what it reports, never through sleeps: each durable
// checkpoint (with -v, "librahost: checkpoint N durable" is printed once the
// checkpoint and the run record are on disk), a line of its output, or its
// exit.
type proc struct {
	cmd    *exec.Cmd
	stdout *outWatch
	stderr *outWatch
	exited chan struct{}
	err    error // once exited is closed
}

// startProc starts `librahost args...` with -v added after the command
// name; stdout (if not nil) gets its standard output (waitStdout watches it
// unless it is a file), env (if not nil) is added to the environment. The process is killed when the test ends.
func startProc(t testing.TB, stdout io.Writer, env []string, args ...string) *proc {
	t.Helper()
	argv := append([]string{args[0], "-v"}, args[1:]...)
	p := &proc{cmd: exec.Command(librahost, argv...), stdout: newOutWatch(stdout), stderr: newOutWatch(nil), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if f, ok := stdout.(*os.File); ok {
		// A regular file as stdout is what lets a resumed run count the
		// bytes already printed: it is given as it is (see mustFile).
		p.cmd.Stdout, p.stdout = f, nil
	}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if p.stdout != nil {
			p.stdout.close()
		}
		p.stderr.close()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

var durableLine = regexp.MustCompile(`(?m)^librahost: checkpoint (\d+) durable`)

// waitDurable waits for the process's k-th durable checkpoint (counted in
// this process, from 1) and returns its epoch; ok is false if the process
// ended first. A run of a guest that ends by itself, waited on for its
// k-th periodic checkpoint, is given --checkpoint-overhead off: on a
// loaded machine one slow pause would otherwise put the next checkpoint
// seconds out, past the guest's end.
func (p *proc) waitDurable(k int) (epoch uint64, ok bool) {
	p.stderr.waitFor(func(s string) bool {
		m := durableLine.FindAllStringSubmatch(s, k)
		if len(m) < k {
			return false
		}
		epoch, _ = strconv.ParseUint(m[k-1][1], 10, 64)
		ok = true
		return true
	})
	return epoch, ok
}

// mustDurable is waitDurable for a process that must not end first.
func (p *proc) mustDurable(t testing.TB, k int) uint64 {
	t.Helper()
	epoch, ok := p.waitDurable(k)
	if !ok {
		t.Fatalf("librahost ended (%v) before its checkpoint #%d\nstderr:\n%s", p.wait(), k, p.stderr)
	}
	return epoch
}

// waitStdout waits until the process has printed text; false if it ended first.
func (p *proc) waitStdout(text string) bool {
	return p.stdout.waitFor(func(s string) bool { return bytes.Contains([]byte(s), []byte(text)) })
}

// mustStdout is waitStdout for a process that must not end first.
func (p *proc) mustStdout(t testing.TB, text string) {
	t.Helper()
	if !p.waitStdout(text) {
		t.Fatalf("librahost ended (%v) before printing %q\nstderr:\n%s", p.wait(), text, p.stderr)
	}
}

// mustFile waits until the file at path, where the process writes its
// output, holds text; the process must not end first.
func (p *proc) mustFile(t testing.TB, path, text string) {
	t.Helper()
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(text)) {
			return
		}
		select {
		case <-p.exited:
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(text)) {
				return
			}
			t.Fatalf("librahost ended (%v) before printing %q\nstderr:\n%s", p.err, text, p.stderr)
		case <-time.After(10 * time.Millisecond): // polls the file
		}
	}
}

// signal sends sig (if the process still runs).
func (p *proc) signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// kill SIGKILLs the process and waits for it to end.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.exited
}

// wait waits for the process to end and returns what cmd.Wait returned.
func (p *proc) wait() error {
	<-p.exited
	return p.err
}

// outWatch is an output stream that can be waited on; it passes what it
// gets on to an optional writer.
type outWatch struct {
	to     io.Writer
	mu     sync.Mutex
	cond   sync.Cond
	buf    bytes.Buffer
	closed bool
}

func newOutWatch(to io.Writer) *outWatch {
	w := &outWatch{to: to}
	w.cond.L = &w.mu
	return w
}

func (w *outWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	w.cond.Broadcast()
	if w.to != nil {
		return w.to.Write(b)
	}
	return len(b), nil
}

func (w *outWatch) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
}

// waitFor waits until cond holds for all the stream so far; false if the
// stream ended first (cond is asked once more then).
func (w *outWatch) waitFor(cond func(string) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if cond(w.buf.String()) {
			return true
		}
		if w.closed {
			return false
		}
		w.cond.Wait()
	}
}

func (w *outWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
