package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/progress"
	"github.com/librahost/librahost/transport"
)

// Client is how a submitter or status query reaches hosts: the cluster
// directory and the host identity (certificate) to present.
type Client struct {
	ClusterDir string
	// As names the certificate to present; empty: this machine's host
	// name if the cluster directory holds its key, else the first host
	// (by name) whose key it holds.
	As string
	// DialTimeout bounds each connection set-up. Default 10 s.
	DialTimeout time.Duration
}

func (c Client) dialTimeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return 10 * time.Second
}

func (c Client) tlsConfig() (*tls.Config, error) {
	as := c.As
	if as == "" {
		hosts, err := transport.KeyedHosts(c.ClusterDir)
		if err != nil {
			return nil, err
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("%w in %s", ErrNoIdentity, c.ClusterDir)
		}
		as = hosts[0]
		if hn, err := os.Hostname(); err == nil && slices.Contains(hosts, hn) {
			as = hn
		}
	}
	return transport.LoadControlTLS(c.ClusterDir, as)
}

// hostConn is a control connection to one host.
type hostConn struct {
	addr string
	id   string
	conn *quic.Conn
}

// dialAll connects to every address at once.
func (c Client) dialAll(ctx context.Context, addrs []string) ([]*hostConn, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	timeout := c.dialTimeout()
	hcs, errs := eachHost(addrs, func(a string) (*hostConn, error) { return dialHost(ctx, a, tc, timeout) })
	if err := errors.Join(errs...); err != nil {
		closeAll(hcs)
		return nil, err
	}
	return hcs, nil
}

func dialHost(ctx context.Context, addr string, tc *tls.Config, timeout time.Duration) (*hostConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, tc, controlQUIC())
	if err != nil {
		return nil, hostError(addr, err)
	}
	id, err := transport.PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(1, "")
		return nil, hostError(addr, err)
	}
	return &hostConn{addr: addr, id: string(id), conn: conn}, nil
}

func closeAll(hcs []*hostConn) {
	for _, h := range hcs {
		if h != nil {
			h.conn.CloseWithError(0, "")
		}
	}
}

// SubmitConfig is a job to run over several hosts.
type SubmitConfig struct {
	Client
	Hosts      []string // control addresses of the hosts, host:port
	N          int
	Module     []byte
	ModuleName string
	Args, Env  []string
	// Prefix starts every line a worker prints with "[rank] ".
	Prefix         bool
	Stdout, Stderr io.Writer
	Log            io.Writer       // progress and host failures
	Progress       io.Writer       // a terminal: a bar while the module is sent, if that takes over a second
	Stop           <-chan struct{} // closed: cancel the job
	// FailureTimeout is how long a host of the job may be silent before
	// it is declared dead; 0: each host's own (`librahost host
	// --failure-timeout`).
	FailureTimeout time.Duration
	// CheckpointEvery > 0 makes the job take a coordinated checkpoint at
	// that interval: each rank's checkpoint is kept on its host's --data
	// and on Replicas other hosts (default 1, at most the hosts but one).
	CheckpointEvery time.Duration
	Replicas        int
	// CheckpointOverhead is the share of a rank's time the periodic
	// checkpoints may hold it up (job.Config.CheckpointOverhead); 0: no
	// limit.
	CheckpointOverhead float64
	// Mounts are directories that exist on every host, a relative host
	// path from each host's working directory; a read-only one must hold
	// the same files on every host.
	Mounts []driver.Mount
	// Started, if set, is called with the job's ID once every host has
	// been told to start it.
	Started  func(job string)
	detached bool // submitted by a host for `submit --detach`
}

// Submit places cfg.N ranks round-robin on cfg.Hosts, starts them, writes
// their output as it comes and returns when every rank has ended. The exit
// code is the first error's (1) or the first non-zero exit code by rank.
func Submit(ctx context.Context, cfg SubmitConfig) (int, error) {
	if cfg.N < 1 || cfg.N > maxWorkers {
		return 1, fmt.Errorf("node: a job of %d workers", cfg.N)
	}
	if len(cfg.Hosts) == 0 {
		return 1, errors.New("node: no hosts to submit to")
	}
	if cfg.FailureTimeout < 0 {
		return 1, fmt.Errorf("node: failure timeout %v: want more than 0", cfg.FailureTimeout)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	addrs := cfg.Hosts
	if len(addrs) > cfg.N {
		addrs = addrs[:cfg.N] // hosts past N get no rank
	}
	if err := checkReplicas(cfg.CheckpointEvery, cfg.Replicas, len(addrs)); err != nil {
		return 1, err
	}
	hcs, err := cfg.dialAll(ctx, addrs)
	if err != nil {
		return 1, err
	}
	defer closeAll(hcs)
	if err := distinctHosts(hcs); err != nil {
		return 1, err
	}
	placement := make([]string, cfg.N)
	for r := range placement {
		placement[r] = hcs[r%len(hcs)].id
	}
	var idb [8]byte
	rand.Read(idb[:])
	s := &submission{cfg: cfg, hcs: hcs, job: hex.EncodeToString(idb[:])}
	body, err := encodePrepare(prepareMsg{
		Job: s.job, N: cfg.N, Placement: placement, Args: cfg.Args, Env: cfg.Env, Module: cfg.ModuleName,
		FailureTimeout: cfg.FailureTimeout, CheckpointEvery: cfg.CheckpointEvery, Replicas: cfg.Replicas,
		CheckpointOverhead: cfg.CheckpointOverhead,
		Mounts:             mountsToMsg(cfg.Mounts),
		Detached:           cfg.detached,
	}, cfg.Module)
	if err != nil {
		return 1, err
	}
	s.bar = progress.New(cfg.Progress, fmt.Sprintf("sending %s to %d hosts", cfg.ModuleName, len(hcs)), int64(len(body)*len(hcs)))
	defer s.bar.Done()
	return s.run(ctx, body)
}

// submission is a job being run from this process.
type submission struct {
	cfg  SubmitConfig
	hcs  []*hostConn
	job  string
	bar  *progress.Bar  // of the PREPAREs' bytes
	strs []*quic.Stream // each host's job stream, once opened
	outs []msgWriter    // writes to strs
	// printed is what was printed of the job before (a resume's: by its
	// first submitter); nil: nothing.
	printed outputPrinted
}

// hostEvent is what one host's stream said.
type hostEvent struct {
	i    int
	exit *exitMsg
	err  error
	kept bool // the host stopped the job with its committed epochs kept
	// damaged: the host failed the job on a damaged checkpoint
	damaged bool
}

func (s *submission) run(ctx context.Context, prepare []byte) (int, error) {
	s.strs = make([]*quic.Stream, len(s.hcs))
	s.outs = make([]msgWriter, len(s.hcs))
	readies := make([]readyMsg, len(s.hcs))
	errs := make([]error, len(s.hcs))
	var wg sync.WaitGroup
	for i, h := range s.hcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readies[i], errs[i] = s.prepare(ctx, i, h, prepare)
		}()
	}
	wg.Wait()
	s.bar.Done()
	err := errors.Join(errs...)
	if err == nil {
		ids, inputs := make([]string, len(s.hcs)), make([][]string, len(s.hcs))
		for i, h := range s.hcs {
			ids[i], inputs[i] = h.id, readies[i].Inputs
		}
		err = checkInputs(mountsToMsg(s.cfg.Mounts), ids, inputs)
	}
	if err != nil {
		s.broadcast(msgCancel, nil)
		return 1, err
	}
	start := startMsg{Addrs: map[string]string{}}
	for i, h := range s.hcs {
		ip, _, _ := net.SplitHostPort(h.addr)
		start.Addrs[h.id] = net.JoinHostPort(ip, fmt.Sprint(readies[i].Port))
	}
	fmt.Fprintf(s.cfg.Log, "librahost submit: job %s: %d workers on %d hosts\n", s.job, s.cfg.N, len(s.hcs))

	var outMu sync.Mutex
	outs := map[[2]int]io.Writer{}
	writer := func(rank int, stream byte) io.Writer {
		k := [2]int{rank, int(stream)}
		if w, ok := outs[k]; ok {
			return w
		}
		dst := s.cfg.Stdout
		if stream == 2 {
			dst = s.cfg.Stderr
		}
		w := driver.NewLineWriter(dst, &outMu, rank, s.cfg.Prefix)
		if w == nil {
			w = io.Discard
		}
		outs[k] = w
		return w
	}
	events := make(chan hostEvent, len(s.hcs)) // a host's stream ended
	exitc := make(chan hostEvent)              // a host's ranks ended
	quit := make(chan struct{})                // no more EXITs are taken
	var omu sync.Mutex                         // serialises the host readers' writes into outs
	outDone := false                           // under omu: nothing more is printed
	printed := s.printed
	if printed == nil {
		printed = outputPrinted{}
	}
	for i := range s.hcs {
		if err := s.outs[i].sendJSON(msgStart, start); err != nil {
			s.broadcast(msgCancel, nil)
			return 1, fmt.Errorf("%w: host %s: %v", ErrHostLost, s.hcs[i].id, describeStreamError(err))
		}
		go func() {
			ev := s.read(i, func(o outputMsg) {
				omu.Lock()
				if outDone {
					// printed is final
				} else if p := printed.fresh(o); p != nil {
					writer(o.rank, o.stream).Write(p)
				}
				omu.Unlock()
			}, func(e *exitMsg) {
				select {
				case exitc <- hostEvent{i: i, exit: e}:
				case <-quit:
				}
			})
			events <- ev
		}()
	}

	if s.cfg.Started != nil {
		s.cfg.Started(s.job)
	}
	// Each rank's exit, the newest told: a rank rolled back by a
	// recovery may end again, on another host.
	var exits []*exitMsg
	exited := map[int]bool{}
	told := make([]bool, len(s.hcs)) // the host sent an EXIT
	gone := make([]bool, len(s.hcs)) // its stream ended
	lost := make([]bool, len(s.hcs)) // its stream broke
	kept := false                    // a host stopped the job with its epochs kept
	damaged := false                 // a host failed it on a damaged checkpoint
	settled := func() bool {         // after a failure: every host told or gone
		for i, t := range told {
			if !t && !gone[i] {
				return false
			}
		}
		return true
	}
	var failure error
	stop := s.cfg.Stop
	// Once a host stopped the job with its epochs kept (its coordinator's
	// host, the first, silent for the failure timeout), that host counts
	// as lost if its stream has not ended a failure timeout later: a dead
	// host's stream would end only at its connection's idle timeout.
	var keptc <-chan time.Time
	// Once the coordinator's host's stream broke, the other hosts say
	// within a failure timeout that the job stopped with its epochs kept
	// (which is the failure then); only if none does is the broken stream.
	var coordLost error
	var coordc <-chan time.Time
	for (failure == nil && len(exited) < s.cfg.N) || (failure != nil && !settled()) {
		select {
		case ev := <-exitc:
			exits = append(exits, ev.exit)
			told[ev.i] = true
			damaged = damaged || ev.exit.Damaged
			for _, r := range ev.exit.Ranks {
				exited[r] = true
			}
			if failure == nil && exitFailed(ev.exit) {
				failure = errJobFailed // the reason is in the exit codes
				s.broadcast(msgCancel, nil)
			}
		case ev := <-events:
			gone[ev.i] = true
			lost[ev.i] = errors.Is(ev.err, ErrHostLost)
			damaged = damaged || ev.damaged
			if ev.kept && !kept {
				kept, keptc = true, time.After(cmp.Or(s.cfg.FailureTimeout, ckpt.DefaultFailureTimeout))
			}
			if failure != nil {
				continue
			}
			if s.recovers(ev) {
				fmt.Fprintf(s.cfg.Log, "librahost submit: %v: the job goes on from its last committed checkpoint\n", ev.err)
				continue
			}
			if coordLost == nil && s.coordinatorLost(ev, gone) {
				coordLost, coordc = ev.err, time.After(cmp.Or(s.cfg.FailureTimeout, ckpt.DefaultFailureTimeout))
				continue
			}
			failure = ev.err
			s.broadcast(msgCancel, nil)
		case <-coordc:
			if failure == nil {
				failure = coordLost
				s.broadcast(msgCancel, nil)
			}
		case <-stop:
			stop = nil
			if failure == nil {
				failure = driver.ErrStopped
			}
			s.broadcast(msgCancel, nil)
		case <-keptc:
			if !told[0] && !gone[0] {
				gone[0], lost[0] = true, true
			}
		case <-ctx.Done():
			close(quit)
			return 1, ctx.Err()
		}
	}
	close(quit)
	if failure == nil {
		s.broadcast(msgEnd, nil)
		s.closeStreams(events, gone)
	}
	omu.Lock()
	for _, w := range outs {
		if f, ok := w.(interface{ Flush() error }); ok {
			f.Flush()
		}
	}
	outDone = true
	omu.Unlock()
	if errors.Is(failure, driver.ErrStopped) {
		return 130, failure
	}
	if failure != nil && !errors.Is(failure, errJobFailed) && s.cfg.CheckpointEvery > 0 && (kept || lost[0]) {
		// The coordinator's host is lost: the job goes on with
		// `submit --resume`, which prints what was not printed here.
		return 1, s.stopKept(ctx, failure, lost, printed, "its last committed epoch")
	}
	code, err := outcome(exits)
	if failure != nil && damaged && s.cfg.CheckpointEvery > 0 {
		// A rank's checkpoint was found damaged (not the guest's own
		// failure): the hosts keep the job's epochs but the damaged one,
		// and `submit --resume` falls back to an older one.
		if err == nil || !errors.Is(failure, errJobFailed) {
			err = failure
		}
		return 1, s.stopKept(ctx, err, lost, printed, "the newest committed epoch the hosts hold undamaged")
	}
	if err == nil && failure != nil && !errors.Is(failure, errJobFailed) {
		return 1, failure
	}
	return code, err
}

// coordinatorLost reports whether host i's stream, which ended with
// ev.err, is the coordinator's host's (host 0, rank 0's) lost in a job
// with checkpoints: the other hosts stop the job with its epochs kept.
func (s *submission) coordinatorLost(ev hostEvent, gone []bool) bool {
	return s.cfg.CheckpointEvery > 0 && ev.i == 0 && errors.Is(ev.err, ErrHostLost) && slices.Contains(gone, false)
}

// recovers reports whether the job goes on without host i, whose stream
// ended with ev.err: a job with checkpoints recovers from the loss of a
// host that does not run its coordinator (host 0, rank 0's). If it
// cannot, the coordinator's host says so.
func (s *submission) recovers(ev hostEvent) bool {
	return s.cfg.CheckpointEvery > 0 && ev.i != 0 && errors.Is(ev.err, ErrHostLost)
}

// errJobFailed marks a failure whose reason is in some host's EXIT.
var errJobFailed = errors.New("node: a rank failed")

func exitFailed(e *exitMsg) bool {
	for i := range e.Ranks {
		if e.Errs[i] != "" || e.Codes[i] != 0 {
			return true
		}
	}
	return false
}

// outcome folds the hosts' exits: the first error by rank, else the first
// non-zero exit code by rank, else 0.
func outcome(exits []*exitMsg) (int, error) {
	type end struct {
		code int
		err  string
	}
	byRank := map[int]end{}
	for _, e := range exits {
		if e == nil {
			continue
		}
		for i, r := range e.Ranks {
			byRank[r] = end{e.Codes[i], e.Errs[i]}
		}
	}
	ranks := make([]int, 0, len(byRank))
	for r := range byRank {
		ranks = append(ranks, r)
	}
	slices.Sort(ranks)
	for _, r := range ranks {
		if e := byRank[r]; e.err != "" {
			return 1, errors.New(e.err)
		}
	}
	for _, r := range ranks {
		if e := byRank[r]; e.code != 0 {
			return e.code, nil
		}
	}
	return 0, nil
}

// prepare opens host i's job stream, sends PREPARE and waits for READY.
func (s *submission) prepare(ctx context.Context, i int, h *hostConn, body []byte) (readyMsg, error) {
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return readyMsg{}, fmt.Errorf("%w: host %s: %v", ErrHostLost, h.id, describeStreamError(err))
	}
	s.strs[i], s.outs[i].w = str, s.bar.Count(str)
	if err := s.outs[i].send(msgPrepare, body); err != nil {
		return readyMsg{}, fmt.Errorf("%w: host %s: %v", ErrHostLost, h.id, describeStreamError(err))
	}
	s.outs[i].w = str
	t, b, err := readMsg(str)
	switch {
	case err != nil:
		return readyMsg{}, fmt.Errorf("%w: host %s: %v", ErrHostLost, h.id, describeStreamError(err))
	case t == msgError:
		var e errorMsg
		decodeJSON(t, b, &e)
		return readyMsg{}, fmt.Errorf("host %s: %s", h.id, e.Error)
	case t != msgReady:
		return readyMsg{}, fmt.Errorf("%w: host %s sent %s instead of READY", ErrProtocol, h.id, t)
	}
	var r readyMsg
	if err := decodeJSON(t, b, &r); err != nil {
		return readyMsg{}, err
	}
	if r.Port <= 0 || r.Port > 65535 {
		return readyMsg{}, fmt.Errorf("%w: host %s: port %d", ErrProtocol, h.id, r.Port)
	}
	return r, nil
}

// read reads host i's stream until it ends, passing on its output and
// its EXITs.
func (s *submission) read(i int, out func(o outputMsg), exit func(e *exitMsg)) hostEvent {
	h := s.hcs[i]
	for {
		t, b, err := readMsg(s.strs[i])
		if err != nil {
			return hostEvent{i: i, err: fmt.Errorf("%w: host %s at %s: %v", ErrHostLost, h.id, h.addr, describeStreamError(err))}
		}
		switch t {
		case msgOutput:
			o, err := decodeOutput(b)
			if err != nil {
				return hostEvent{i: i, err: fmt.Errorf("host %s: %v", h.id, err)}
			}
			out(o)
		case msgExit:
			var e exitMsg
			if err := decodeJSON(t, b, &e); err != nil {
				return hostEvent{i: i, err: err}
			}
			if len(e.Codes) != len(e.Ranks) || len(e.Errs) != len(e.Ranks) {
				return hostEvent{i: i, err: fmt.Errorf("%w: host %s: EXIT lists differ in length", ErrProtocol, h.id)}
			}
			exit(&e)
		case msgError:
			var e errorMsg
			decodeJSON(t, b, &e)
			if e.Lost {
				return hostEvent{i: i, err: fmt.Errorf("%w: host %s: %s", ErrHostLost, h.id, e.Error)}
			}
			return hostEvent{i: i, err: fmt.Errorf("%w: host %s: %s", ErrJobFailed, h.id, e.Error), kept: e.Kept, damaged: e.Damaged}
		default:
			return hostEvent{i: i, err: fmt.Errorf("%w: host %s sent %s", ErrProtocol, h.id, t)}
		}
	}
}

// describeStreamError is the reason a host's stream failed, in a few words.
func describeStreamError(err error) string {
	kind, reason := classify(err)
	if kind == ErrRefused {
		return "refused: " + reason
	}
	return reason
}

// closeStreams ends the streams not gone and waits, a little, for the
// hosts to end theirs (their readers report on events), so that the
// last message is delivered before the connections close.
func (s *submission) closeStreams(events <-chan hostEvent, gone []bool) {
	reading := 0
	for i, str := range s.strs {
		if str != nil && !gone[i] {
			str.Close()
			str.SetReadDeadline(time.Now().Add(2 * time.Second))
			reading++
		}
	}
	for range reading {
		<-events
	}
}

// broadcast sends a message to every host whose stream is open, ignoring
// failures: a host that cannot be told has lost its stream, which
// cancels its part too.
func (s *submission) broadcast(t msgType, body []byte) {
	for i, str := range s.strs {
		if str != nil {
			s.outs[i].send(t, body)
		}
	}
}

// checkReplicas refuses a checkpoint interval or replica count that cannot
// work on a job of hosts hosts.
func checkReplicas(every time.Duration, replicas, hosts int) error {
	switch {
	case every < 0:
		return fmt.Errorf("node: checkpoint interval %v: want more than 0", every)
	case replicas < 0:
		return fmt.Errorf("node: --replicas %d: want 1 or more", replicas)
	case replicas > 0 && every == 0:
		return fmt.Errorf("node: --replicas %d without --checkpoint-every: a job without checkpoints keeps no replicas", replicas)
	case hosts > 1 && replicas > hosts-1:
		return fmt.Errorf("node: --replicas %d: a job on %d hosts keeps each checkpoint on at most %d other hosts", replicas, hosts, hosts-1)
	}
	return nil
}
