package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM takes a final checkpoint and exits; --resume continues, and the
// two runs together print what one uninterrupted run prints.
func TestSigtermCheckpointAndResume(t *testing.T) {
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	var out, errb bytes.Buffer
	p := startProc(t, &out, nil, "run", "--state", state, wasm)
	p.mustStdout(t, "tick 4 ")
	p.signal(syscall.SIGTERM)
	err := p.wait()
	if p.cmd.ProcessState.ExitCode() != 143 {
		t.Fatalf("exit %v, want 143\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "--resume") {
		t.Fatalf("stderr does not say how to resume:\n%s", p.stderr)
	}
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	compareOutput(t, out.Bytes(), want)
}

// `librahost checkpoint` reaches a running instance through its state dir;
// after a SIGKILL the run resumes from that checkpoint.
func TestCheckpointCommand(t *testing.T) {
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	p := startProc(t, f, nil, "run", "--state", state, wasm)
	p.mustFile(t, outPath, "tick 2 ")
	stdout, stderr, code := lh(t, "checkpoint", "--state", state)
	if code != 0 || !strings.HasPrefix(stdout, "checkpoint 1 durable") {
		t.Fatalf("checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	// Kill it once it has printed a tick after the checkpoint.
	ticks := strings.Count(string(readAll(t, outPath)), "tick ")
	p.mustFile(t, outPath, fmt.Sprintf("tick %d ", ticks))
	p.kill()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	if !strings.Contains(ls, "\n1 ") {
		t.Fatalf("ckpt ls does not list epoch 1:\n%s", ls)
	}
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	compareOutput(t, readAll(t, outPath), want)
	_, stderr, code = lh(t, "checkpoint", "--state", state)
	if code != 1 {
		t.Fatalf("checkpoint with nothing running: exit %d", code)
	}
	oneLineError(t, stderr, "no librahost process is running")
}

// restore --epoch continues from an older checkpoint than the newest;
// the output is still exactly once.
func TestRestoreOlderEpoch(t *testing.T) {
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	p := startProc(t, f, nil, "run", "--state", state, "--checkpoint-every", "200ms", wasm)
	p.mustDurable(t, 2)
	p.kill()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two checkpoints:\n%s", ls)
	}
	oldest := strings.Fields(lines[1])[0]
	cmd := exec.Command(librahost, "restore", "--state", state, "--epoch", oldest)
	cmd.Stdout = f
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("restore --epoch %s: %v\n%s", oldest, err, errb.Bytes())
	}
	compareOutput(t, readAll(t, outPath), want)
	insp, _, code := lh(t, "ckpt", "inspect", "--state", state, "--epoch", oldest)
	if code != 0 || !strings.Contains(insp, "verify:") || !strings.Contains(insp, "module digest:") {
		t.Fatalf("ckpt inspect: exit %d\n%s", code, insp)
	}
}

// watched is a librahost process whose output lines are read as they come.
type watched struct {
	cmd   *exec.Cmd
	lines chan string // "out: " or "err: " and the line
	mu    sync.Mutex
	out   strings.Builder
	errs  strings.Builder
	read  sync.WaitGroup
}

// watch starts cmd with its stdout and stderr read line by line.
func watch(t *testing.T, cmd *exec.Cmd) *watched {
	t.Helper()
	w := &watched{cmd: cmd, lines: make(chan string, 1024)}
	for _, s := range []struct {
		prefix string
		buf    *strings.Builder
	}{{"out: ", &w.out}, {"err: ", &w.errs}} {
		var r io.ReadCloser
		var err error
		if s.prefix == "out: " {
			r, err = cmd.StdoutPipe()
		} else {
			r, err = cmd.StderrPipe()
		}
		if err != nil {
			t.Fatal(err)
		}
		w.read.Add(1)
		go func() {
			defer w.read.Done()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				w.mu.Lock()
				s.buf.WriteString(sc.Text() + "\n")
				w.mu.Unlock()
				w.lines <- s.prefix + sc.Text()
			}
		}()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.read.Wait(); close(w.lines) }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return w
}

// waitFor waits for a line of the stream ("out: " or "err: ") that
// contains want, and returns it.
func (w *watched) waitFor(t *testing.T, stream, want string) string {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				out, errs := w.output()
				t.Fatalf("librahost ended before printing %q\nstdout:\n%s\nstderr:\n%s", want, out, errs)
			}
			if strings.HasPrefix(l, stream) && strings.Contains(l, want) {
				return strings.TrimPrefix(l, stream)
			}
		case <-deadline:
			out, errs := w.output()
			t.Fatalf("no line %q after 2 minutes\nstdout:\n%s\nstderr:\n%s", want, out, errs)
		}
	}
}

func (w *watched) output() (string, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String(), w.errs.String()
}

// wait waits for the process to end and returns its exit code, stdout and
// stderr.
func (w *watched) wait(t *testing.T) (int, string, string) {
	t.Helper()
	for range w.lines { // drain: the readers end at EOF
	}
	w.cmd.Wait()
	out, errs := w.output()
	return w.cmd.ProcessState.ExitCode(), out, errs
}

// lastTick returns i of the last "tick i" line of out.
func lastTick(t *testing.T, out string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	i, err := strconv.Atoi(strings.TrimPrefix(lines[len(lines)-1], "tick "))
	if err != nil {
		t.Fatalf("stdout does not end with a tick:\n%s", out)
	}
	return i
}

// A second SIGTERM while the final checkpoint is written says that it is
// being finished and lets it finish; a third abandons it, and the run
// resumes from the checkpoint before. Either way the resumed run goes on
// from the last line printed. The checkpoints are held open by a failpoint
// until the test has sent its signals.
func TestSignalsDuringFinalCheckpoint(t *testing.T) {
	wasm := guest(t, "tests/testdata/ticks")
	for _, signals := range []int{2, 3} {
		t.Run(fmt.Sprint(signals, " signals"), func(t *testing.T) {
			dir := t.TempDir()
			state, gate := filepath.Join(dir, "st"), filepath.Join(dir, "gate")
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(librahost, "run", "--state", state, "--checkpoint-every", "100ms", wasm)
			cmd.Env = append(os.Environ(), "LIBRAHOST_FAILPOINTS=commit:tx=wait("+gate+")")
			w := watch(t, cmd)
			waitEpoch(t, state, 1)
			os.Remove(gate) // the checkpoints from now on wait at their commit
			cmd.Process.Signal(syscall.SIGTERM)
			w.waitFor(t, "err: ", "stopping: taking a final checkpoint")
			cmd.Process.Signal(syscall.SIGTERM)
			w.waitFor(t, "err: ", "finishing the final checkpoint; press Ctrl-C again to abandon it")
			if signals == 3 {
				cmd.Process.Signal(syscall.SIGTERM)
				w.waitFor(t, "err: ", "final checkpoint abandoned")
			} else if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := w.wait(t)
			if code != 143 {
				t.Fatalf("exit %d, want 143\n%s", code, errs)
			}
			if signals == 2 && !strings.Contains(errs, "stopped after checkpoint") {
				t.Fatalf("the final checkpoint was not finished:\n%s", errs)
			}
			last := lastTick(t, out)
			w = watch(t, exec.Command(librahost, "run", "--resume", "--state", state, wasm))
			if got, want := w.waitFor(t, "out: ", "tick "), fmt.Sprint("tick ", last+1); got != want {
				t.Fatalf("the resumed run printed %q first, want %q", got, want)
			}
		})
	}
}

// SIGTERM of a run without checkpoints exits 143, as a shell reports a
// process ended by SIGTERM.
func TestSigtermWithoutCheckpoints(t *testing.T) {
	w := watch(t, exec.Command(librahost, "run", guest(t, "tests/testdata/ticks")))
	w.waitFor(t, "out: ", "tick 0")
	w.cmd.Process.Signal(syscall.SIGTERM)
	if code, _, errs := w.wait(t); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, errs)
	}
}

// A checkpoint that fails when the guest has ended successfully (a disk
// full) is a warning: the guest's exit code stands. So is a run record
// that cannot be marked finished.
func TestFailedCheckpointAtEnd(t *testing.T) {
	wasm := guest(t, "tests/testdata/ckptexit")
	for _, tc := range []struct {
		name, failpoints, warning string
		damage                    func(state string) error
	}{
		{"checkpoint", "commit:chunks=wait(GATE);commit:tx=error", "checkpoint 1 failed", nil},
		{"record", "commit:tx=wait(GATE)", "warning: the run ended but",
			func(state string) error { return os.Mkdir(filepath.Join(state, "run.json.tmp"), 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state, gate := filepath.Join(dir, "st"), filepath.Join(dir, "gate")
			cmd := exec.Command(librahost, "run", "--state", state, wasm)
			cmd.Env = append(os.Environ(), "LIBRAHOST_FAILPOINTS="+strings.ReplaceAll(tc.failpoints, "GATE", gate))
			w := watch(t, cmd)
			w.waitFor(t, "out: ", "done") // the guest has ended; its checkpoint waits at the gate
			if tc.damage != nil {
				if err := tc.damage(state); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := w.wait(t)
			if code != 0 || out != "before\ndone\n" {
				t.Fatalf("exit %d, stdout %q\n%s", code, out, errs)
			}
			if !strings.Contains(errs, tc.warning) || strings.Contains(errs, "librahost run:") {
				t.Fatalf("want a warning %q and no error, got:\n%s", tc.warning, errs)
			}
		})
	}
}
