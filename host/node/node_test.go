package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/host/build/buildtest"
	"github.com/librahost/librahost/transport"
)

var testDir string

func TestMain(m *testing.M) {
	code := func() int {
		d, err := os.MkdirTemp("", "librahost-node-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		testDir = d
		guests.Dir = d
		if err := transport.InitCluster(filepath.Join(d, "cluster"), []string{"a", "b", "c"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := transport.InitCluster(filepath.Join(d, "other"), []string{"a", "x"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

var guests buildtest.Builder

// testGuest builds src (relative to this package) once per test run.
func testGuest(t testing.TB, src string) []byte { return guests.Guest(t, src) }

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHosts starts a daemon for each name on loopback and returns their
// control addresses; they stop when the test ends (or stop is called).
func startHosts(t *testing.T, faults transport.Faults, names ...string) (addrs []string, stop []context.CancelFunc, logs []*syncBuffer) {
	t.Helper()
	ds, stop, logs := startDaemons(t, faults, names...)
	for _, d := range ds {
		addrs = append(addrs, d.Addr().String())
	}
	return addrs, stop, logs
}

// startDaemons is startHosts returning the daemons.
func startDaemons(t *testing.T, faults transport.Faults, names ...string) (ds []*Daemon, stop []context.CancelFunc, logs []*syncBuffer) {
	t.Helper()
	for _, n := range names {
		log := &syncBuffer{}
		// Three daemons in one test process on a loaded machine can go
		// without running for longer than the default failure timeout:
		// jobs here declare a host dead after 10 s of silence unless
		// they ask otherwise.
		d, cancel, _ := listenAt(t, Config{Name: n, DataDir: filepath.Join(t.TempDir(), n), Faults: faults, Log: log,
			FailureTimeout: 10 * time.Second})
		ds = append(ds, d)
		stop = append(stop, cancel)
		logs = append(logs, log)
	}
	return ds, stop, logs
}

func submitCfg(addrs []string, n int, module []byte, args ...string) (SubmitConfig, *syncBuffer, *syncBuffer) {
	var out, errOut syncBuffer
	return SubmitConfig{
		Client:     Client{ClusterDir: filepath.Join(testDir, "cluster"), As: "a"},
		Hosts:      addrs,
		N:          n,
		Module:     module,
		ModuleName: "guest.wasm",
		Args:       append([]string{"guest"}, args...),
		Stdout:     &out,
		Stderr:     &errOut,
	}, &out, &errOut
}

// submitted is a Submit running in the background.
type submitted struct {
	done chan struct{}
	code int
	err  error
}

func submitAsync(cfg SubmitConfig) *submitted {
	s := &submitted{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.code, s.err = Submit(context.Background(), cfg)
	}()
	return s
}

// wait returns Submit's result, failing the test if the job hangs: a
// hang detector, minutes long since a loaded machine is slow, that
// prints every goroutine (the hosts run in this process) to show where.
func (s *submitted) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(5 * time.Minute):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		t.Fatal("the job did not end (its goroutines are on stderr)")
	}
	return s.code, s.err
}

// A ring of 7 workers over 3 hosts checks every hop; status then shows
// the job ended on each host with its ranks.
func TestSubmitRing(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	addrs, _, _ := startHosts(t, transport.Faults{}, "a", "b", "c")
	cfg, out, errOut := submitCfg(addrs, 7, ring, "-laps", "20")
	cfg.Prefix = true
	code, err := Submit(context.Background(), cfg)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v\nstderr: %s", code, err, errOut)
	}
	if want := "[0] ring of 7: 20 laps, token 420, every hop checked\n"; out.String() != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	sts, errs, err := QueryStatus(context.Background(), cfg.Client, addrs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"a": {0, 3, 6}, "b": {1, 4}, "c": {2, 5}}
	for i, st := range sts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(st.Jobs) != 1 || st.Jobs[0].State != stateEnded || st.Jobs[0].N != 7 {
			t.Fatalf("host %s: %+v", st.Host, st.Jobs)
		}
		var ranks []int
		for _, w := range st.Jobs[0].Workers {
			if w.State != workerExited || w.Exit != 0 {
				t.Fatalf("host %s: %+v", st.Host, w)
			}
			ranks = append(ranks, w.Rank)
		}
		if fmt.Sprint(ranks) != fmt.Sprint(want[st.Host]) {
			t.Fatalf("host %s ran ranks %v, want %v", st.Host, ranks, want[st.Host])
		}
	}
}

// With loss, duplication and reordering on every job link, the ring still
// sees every hop in order (the guest checks each token).
func TestSubmitUnderFaults(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	f := transport.Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Seed: 7}
	addrs, _, _ := startHosts(t, f, "a", "b", "c")
	cfg, out, errOut := submitCfg(addrs, 3, ring, "-laps", "30")
	code, err := Submit(context.Background(), cfg)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v\nstderr: %s", code, err, errOut)
	}
	if want := "ring of 3: 30 laps, token 90, every hop checked\n"; out.String() != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
}

// A rank that fails ends the job on every host, and Submit reports it.
func TestSubmitRankFails(t *testing.T) {
	g := testGuest(t, "../../tests/testdata/gowait")
	addrs, _, _ := startHosts(t, transport.Faults{}, "a", "b", "c")
	cfg, _, _ := submitCfg(addrs, 3, g)
	res := submitAsync(cfg)
	code, err := res.wait(t)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "rank 1") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("exit %d, %v", code, err)
	}
}

// A host that dies while it runs ranks fails the job with one line naming
// it, and the other hosts' parts are cancelled.
func TestSubmitHostLost(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	addrs, stop, logs := startHosts(t, transport.Faults{}, "a", "b", "c")
	cfg, _, _ := submitCfg(addrs, 3, ring, "-laps", "1000000")
	res := submitAsync(cfg)
	for !strings.Contains(logs[1].String(), "ranks [1]") {
		select {
		case <-res.done:
			t.Fatalf("the job ended before host b was stopped: %v\nlogs:\n%s%s%s", res.err, logs[0], logs[1], logs[2])
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop[1]()
	code, err := res.wait(t)
	if code != 1 || !errors.Is(err, ErrJobFailed) && !errors.Is(err, ErrHostLost) {
		t.Fatalf("exit %d, %v", code, err)
	}
	if !strings.Contains(err.Error(), "host b") {
		t.Fatalf("error does not name the host: %v", err)
	}
	// A hang detector, minutes long as wait's, not a time limit.
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(logs[0].String(), "cancelled") || !strings.Contains(logs[2].String(), "cancelled") {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			t.Fatalf("the other hosts did not cancel their part:\n%s%s", logs[0], logs[2])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client whose certificate comes from another cluster's CA is refused
// before any message.
func TestForeignClientRefused(t *testing.T) {
	addrs, _, logs := startHosts(t, transport.Faults{}, "a")
	c := Client{ClusterDir: filepath.Join(testDir, "other"), As: "x", DialTimeout: 3 * time.Second}
	_, errs, err := QueryStatus(context.Background(), c, addrs)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] == nil || strings.Contains(errs[0].Error(), "\n") {
		t.Fatalf("a foreign client got %v", errs[0])
	}
	cfg, _, _ := submitCfg(addrs, 1, []byte("\x00asm\x01\x00\x00\x00"))
	cfg.Client = c
	if _, err := Submit(context.Background(), cfg); err == nil {
		t.Fatal("a foreign client submitted a job")
	}
	if strings.Contains(logs[0].String(), "job") {
		t.Fatalf("the host started a job: %s", logs[0])
	}
}

// A module that is not WebAssembly fails the job with one line, and the
// host goes on serving.
func TestSubmitBadModule(t *testing.T) {
	addrs, _, _ := startHosts(t, transport.Faults{}, "a", "b")
	cfg, _, _ := submitCfg(addrs, 2, []byte("not wasm at all"))
	code, err := Submit(context.Background(), cfg)
	if code != 1 || err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("exit %d, %v", code, err)
	}
	if _, errs, _ := QueryStatus(context.Background(), cfg.Client, addrs); errs[0] != nil || errs[1] != nil {
		t.Fatalf("hosts down after a bad module: %v", errs)
	}
}
