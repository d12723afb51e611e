package jobctl

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

// quicHost is a host's socket with a Hub on it, as a daemon has them: the
// listener hands the Hub the connections that ask for ALPN.
type quicHost struct {
	name string
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	hub  *Hub
}

func newCluster(tb testing.TB, names ...string) string {
	dir := tb.TempDir()
	if err := transport.InitCluster(dir, names); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func startQUICHost(tb testing.TB, dir, name string) *quicHost {
	h, err := listenQUICHost(dir, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.close)
	return h
}

func listenQUICHost(dir, name string) (*quicHost, error) {
	tc, err := transport.LoadHostTLS(dir, name)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	h := &quicHost{name: name, udp: udp, tr: &quic.Transport{Conn: udp}}
	if h.hub, err = NewHub(HubConfig{TLS: tc, Transport: h.tr, Logf: func(string, ...any) {}}); err != nil {
		return nil, err
	}
	lc := h.hub.TLSConfig().Clone()
	lc.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(chi.SupportedProtos, ALPN) {
			return h.hub.TLSConfig(), nil
		}
		return nil, fmt.Errorf("no protocol of this host among %q", chi.SupportedProtos)
	}
	if h.ln, err = h.tr.Listen(lc, streamQUIC()); err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := h.ln.Accept(context.Background())
			if err != nil {
				return
			}
			if conn.ConnectionState().TLS.NegotiatedProtocol == ALPN {
				h.hub.ServeConn(conn)
			}
		}
	}()
	return h, nil
}

func (h *quicHost) addr() string { return h.udp.LocalAddr().String() }

// kill ends the host at once: its socket first, so that nothing more,
// not even a connection's close, leaves it.
func (h *quicHost) kill() {
	h.udp.Close()
	h.close()
}

func (h *quicHost) close() {
	h.hub.Close()
	h.ln.Close()
	h.tr.Close()
	h.udp.Close()
}

func (h *quicHost) open(tb testing.TB, names []string, self ckpt.HostID, coordAddr string, ft time.Duration) *Endpoint {
	e, err := h.hub.Open(Config{Job: "job-1", Hosts: names, Self: self, CoordinatorAddr: coordAddr,
		FailureTimeout: ft, Logf: tb.Logf})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestQUICLoss: three hosts on QUIC over loopback, with their cores fed
// by their Endpoints: an epoch commits; a participant host killed
// outright is declared lost by the coordinator, its rank restarts from
// its replica and the job runs as a new incarnation; then the
// coordinator's host is killed and the participant left stops the job.
// (Detection times are checked in fake time by TestDetectLoss; the limits
// here only end a hang.)
func TestQUICLoss(t *testing.T) {
	names := []string{"a", "b", "c"}
	dir := newCluster(t, names...)
	hs := make([]*quicHost, 3)
	for i, n := range names {
		hs[i] = startQUICHost(t, dir, n)
	}
	const ft = 3 * time.Second // a loaded machine does not stall a live host's heartbeats that long
	acts := make(chan hostAction, 4096)
	// The participants first: they dial until the coordinator's host
	// has the job.
	eps := make([]*Endpoint, 3)
	for _, h := range []int{2, 1, 0} {
		eps[h] = hs[h].open(t, names, ckpt.HostID(h), hs[0].addr(), ft)
		ch := newCoreHost(eps[h], 3, ckpt.HostID(h), ft, acts)
		go ch.loop(50 * time.Millisecond)
		if h == 0 {
			ch.do(func() { ch.coord.Trigger() })
		}
	}
	for range 3 {
		waitAct(t, acts, -1, ckpt.ActRelease, time.Minute)
	}
	hs[2].kill()
	if a := waitAct(t, acts, 0, ckpt.ActRecover, time.Minute); a.act.Host != 2 {
		t.Fatalf("h%d declared lost, not h2", a.act.Host)
	}
	waitAct(t, acts, 0, ckpt.ActRestore, time.Minute)
	waitAct(t, acts, 1, ckpt.ActResume, time.Minute)
	hs[0].kill()
	a := waitAct(t, acts, 1, ckpt.ActStop, time.Minute)
	if !strings.Contains(a.act.Err, "coordinator's host h0 is lost") {
		t.Fatalf("h1 stopped: %s", a.act.Err)
	}
}

// TestQUICRefuses: a host of the cluster that is not among the job's, and
// a stream for a job the host does not run, are refused; the job's own
// hosts are not disturbed.
func TestQUICRefuses(t *testing.T) {
	names := []string{"a", "b", "d"}
	dir := newCluster(t, names...)
	a, b, d := startQUICHost(t, dir, "a"), startQUICHost(t, dir, "b"), startQUICHost(t, dir, "d")
	job := []string{"a", "b"}
	ea := a.open(t, job, 0, "", time.Second)
	eb := b.open(t, job, 1, a.addr(), time.Second)
	// d claims to be host b of the job: its certificate says d.
	ed, err := d.hub.Open(Config{Job: "job-1", Hosts: []string{"a", "d"}, Self: 1, CoordinatorAddr: a.addr(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	// A stream for another job.
	if _, s, err := d.hub.dial(context.Background(), a.addr()); err == nil {
		s.Write(appendFrame(nil, frame{kind: kindHello, job: "job-2", body: helloBody(1)}))
		if _, err := readFrame(s); err == nil {
			t.Fatal("a stream for a job the host does not run was answered")
		}
	} else {
		t.Fatal(err)
	}
	if err := eb.Send(0, marker(1, 0, 9)); err != nil {
		t.Fatal(err)
	}
	if r := <-ea.Recv(); r.From != 1 || r.Msg.Epoch != 9 {
		t.Fatalf("coordinator got %v from h%d", r.Msg, r.From)
	}
	if !ea.LastHeard(1).After(time.Time{}) {
		t.Fatal("b not heard")
	}
	if _, err := a.hub.Open(Config{Job: "job-1", Hosts: job}); err == nil {
		t.Fatal("a second endpoint of one job on one host")
	}
}

// TestQUICProcessKilled: the participant host is another process,
// SIGKILLed once it took part in an epoch; the coordinator declares it
// lost.
func TestQUICProcessKilled(t *testing.T) {
	names := []string{"a", "b"}
	dir := newCluster(t, names...)
	a := startQUICHost(t, dir, "a")
	const ft = 2 * time.Second
	acts := make(chan hostAction, 4096)
	ea := a.open(t, names, 0, "", ft)
	ch := newCoreHost(ea, 2, 0, ft, acts)
	go ch.loop(20 * time.Millisecond)

	b := startChild(t, dir, 1, a.addr(), ft)
	b.waitLine(t, childReady)
	ch.do(func() { ch.coord.Trigger() })
	waitAct(t, acts, 0, ckpt.ActRelease, time.Minute) // b took part in an epoch
	b.kill()
	if a := waitAct(t, acts, 0, ckpt.ActRecover, time.Minute); a.act.Host != 1 {
		t.Fatalf("h%d declared lost, not h1", a.act.Host)
	}
}

// TestQUICCoordinatorProcessKilled: the coordinator's host is another
// process, SIGKILLed once an epoch committed; the participant stops the
// job.
func TestQUICCoordinatorProcessKilled(t *testing.T) {
	names := []string{"a", "b"}
	dir := newCluster(t, names...)
	const ft = 2 * time.Second
	a := startChild(t, dir, 0, "", ft)
	addr := strings.TrimPrefix(a.waitLine(t, childListening), childListening)
	b := startQUICHost(t, dir, "b")
	acts := make(chan hostAction, 4096)
	eb := b.open(t, names, 1, addr, ft)
	go newCoreHost(eb, 2, 1, ft, acts).loop(20 * time.Millisecond)
	waitAct(t, acts, 1, ckpt.ActRelease, time.Minute) // the round a began once it heard b
	a.kill()
	if a := waitAct(t, acts, 1, ckpt.ActStop, time.Minute); !strings.Contains(a.act.Err, "coordinator's host h0 is lost") {
		t.Fatalf("b stopped: %s", a.act.Err)
	}
}

// child is a host of a job of two (a, b) in another process (runChild).
type child struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

const (
	childEnv       = "JOBCTL_TEST_CHILD"
	childListening = "jobctl child: listening on "
	childReady     = "jobctl child: hears the other host"
)

// startChild starts host self of a job of two, whose coordinator's host
// (h0) is at addr, as another process.
func startChild(tb testing.TB, dir string, self ckpt.HostID, addr string, ft time.Duration) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{dir, fmt.Sprint(self), addr, ft.String()}, "|"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, lines: bufio.NewScanner(out)}
	tb.Cleanup(c.kill)
	return c
}

// waitLine returns the first line the child prints from now on that
// starts with prefix.
func (c *child) waitLine(tb testing.TB, prefix string) string {
	for c.lines.Scan() {
		if strings.HasPrefix(c.lines.Text(), prefix) {
			return c.lines.Text()
		}
	}
	tb.Fatalf("the child ended (%v) before printing %q", c.cmd.Wait(), prefix)
	return ""
}

// kill SIGKILLs the child and waits for it to end.
func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// runChild is a host of a job of two in a process of its own, driving
// its cores until it is killed: h0 (a) prints its address, and begins a
// round once it hears h1; h1 (b) dials h0. Each prints childReady once it
// hears the other.
func runChild(spec string) {
	f := strings.Split(spec, "|")
	self := ckpt.HostID(0)
	if f[1] == "1" {
		self = 1
	}
	ft, _ := time.ParseDuration(f[3])
	names := []string{"a", "b"}
	h, err := listenQUICHost(f[0], names[self])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if self == 0 {
		fmt.Println(childListening + h.addr())
	}
	e, err := h.hub.Open(Config{Job: "job-1", Hosts: names, Self: self, CoordinatorAddr: f[2],
		FailureTimeout: ft, Logf: func(string, ...any) {}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	acts := make(chan hostAction, 1<<16)
	go func() {
		for range acts {
		}
	}()
	ch := newCoreHost(e, 2, self, ft, acts)
	go ch.loop(20 * time.Millisecond)
	for e.LastHeard(1 - self).IsZero() {
		time.Sleep(10 * time.Millisecond)
	}
	if self == 0 {
		ch.do(func() { ch.coord.Trigger() })
	}
	fmt.Println(childReady)
	select {}
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(spec)
	}
	os.Exit(m.Run())
}
