package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	driver "github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/jobrec"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/transport"
)

// job is one job's part on a host.
type job struct {
	id, module, submitter string
	n                     int
	placement             []string
	ranks                 []int
	started               time.Time
	// failureTimeout is how long a host of the job may be silent before
	// it is declared dead: the submitter's, else this host's. The job's
	// protocol cores and its control streams (host/jobctl) take it.
	failureTimeout time.Duration

	str   *quic.Stream             // read by the job's one reader at a time
	links *transport.QUICTransport // on the daemon's socket; set before READY
	ep    *transport.Endpoint      // while the job runs; guarded by the daemon's mu
	out   msgWriter                // writes to str
	stop  context.CancelCauseFunc
	done  chan struct{} // closed when the job has ended here
	mu    sync.Mutex
	state string
	ended time.Time
	ws    []WorkerStatus
	peers map[string]string // the other hosts of the job → their addresses, from START
	self  string            // this host's address, from START
	offs  map[[2]int]uint64 // bytes sent of each rank's stream (OUTPUT's offsets)
	// report follows the job's newest checkpoints (the driver's).
	report *driver.Status
	log    *jobrec.Log // its output here (daemon_records.go)
	// logged is closed once the job's output log here is started (or
	// could not be): a LOGS that found the job waits for it, as the
	// job is listed a moment before.
	logged chan struct{}
	why    string // the one line it ended with, if any
	// detached: submitted by a host for `submit --detach`
	detached bool

	// A job with checkpoints: its store here (the checkpoints of the
	// ranks run here and the replicas of others'), guarded by mu, and its
	// share of the protocol.
	dir   string
	store *ckpt.Store
	share *driver.Share
	hosts []string // the job's hosts by ckpt.HostID
}

// ckptStore returns the job's store here, nil if it keeps none (now).
func (j *job) ckptStore() *ckpt.Store {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.store
}

// inJob reports whether host h has a part in the job.
func (j *job) inJob(h string) bool { return slices.Contains(j.placement, h) }

func (j *job) status() JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	report := j.report.Read()
	workers := slices.Clone(j.ws)
	for _, r := range report.Ranks { // a recovery moved it here
		if !slices.ContainsFunc(workers, func(w WorkerStatus) bool { return w.Rank == r.Rank }) {
			workers = append(workers, WorkerStatus{Rank: r.Rank, State: r.State, Exit: r.Exit, Error: r.Error})
		}
	}
	slices.SortFunc(workers, func(a, b WorkerStatus) int { return a.Rank - b.Rank })
	return JobStatus{
		ID:        j.id,
		Module:    j.module,
		N:         j.n,
		Submitter: j.submitter,
		State:     j.state,
		Started:   j.started,
		Ended:     j.ended,
		Why:       j.why,
		Detached:  j.detached,
		Workers:   workers,
		// The newest checkpoints, oldest first.
		Checkpoints: report.Checkpoints,
		Recoveries:  namedRecoveries(report.Recoveries, j.hosts),
	}
}

func (j *job) setState(s string) {
	j.mu.Lock()
	j.state = s
	if s != statePreparing && s != stateRunning {
		j.ended = time.Now()
	}
	j.mu.Unlock()
}

func (j *job) setWorkers(state string) {
	j.mu.Lock()
	for i := range j.ws {
		j.ws[i].State = state
	}
	j.mu.Unlock()
}

// cancel stops the job, if it still runs, for the given reason.
func (j *job) cancel(why error) {
	if j.stop != nil {
		j.stop(why)
	}
}

// fail reports a one-line reason to the submitter.
func (j *job) fail(err error) {
	j.recordWhy(err)
	j.out.sendJSON(msgError, errorMsg{Error: err.Error(), Kept: errors.Is(err, driver.ErrEpochsKept), Lost: errors.Is(err, driver.ErrDeclaredLost),
		Damaged: errors.Is(err, ckpt.ErrCorrupt)})
}

// output forwards a rank's stdout (stream 1) or stderr (2) to the
// submitter.
type output struct {
	d      *Daemon
	j      *job
	rank   int
	stream byte
}

func (o output) Write(p []byte) (int, error) {
	return o.WriteGuest(p, int64(o.j.wrote(o.rank, o.stream, len(p))))
}

// WriteGuest forwards a guest's write with its position in the rank's
// stream (host.GuestWriter): a rank rolled back to a checkpoint writes
// from the checkpoint's position again, and the submitter prints only
// what it had not.
func (o output) WriteGuest(p []byte, pos int64) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), 1<<20)
		off := uint64(pos)
		o.j.keep(o.d, o.rank, o.stream, off, p[:n])
		if err := o.j.out.send(msgOutput, encodeOutput(outputMsg{o.rank, o.stream, off, p[:n]})); err != nil {
			return 0, err
		}
		p, pos = p[n:], pos+int64(n)
	}
	return total, nil
}

// wrote counts n more bytes of rank's stream and returns where they
// begin in it.
func (j *job) wrote(rank int, stream byte, n int) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.offs == nil {
		j.offs = map[[2]int]uint64{}
	}
	k := [2]int{rank, int(stream)}
	off := j.offs[k]
	j.offs[k] += uint64(n)
	return off
}

// runJob prepares, runs and ends a job described by a PREPARE message,
// talking to its submitter over str.
func (d *Daemon) runJob(ctx context.Context, str *quic.Stream, peer string, body []byte) {
	p, module, err := decodePrepare(body)
	if err != nil {
		d.logf("job from %s: %v", peer, err)
		writeJSON(str, msgError, errorMsg{Error: err.Error()})
		return
	}
	j := &job{
		id: p.Job, module: p.Module, submitter: peer, n: p.N, placement: p.Placement,
		started: time.Now(), str: str, report: driver.NewStatus(0), out: msgWriter{w: str}, state: statePreparing,
		detached: p.Detached, done: make(chan struct{}), logged: make(chan struct{}), failureTimeout: cmp.Or(p.FailureTimeout, d.cfg.FailureTimeout, ckpt.DefaultFailureTimeout),
	}
	for r, h := range p.Placement {
		if h == d.cfg.Name {
			j.ranks = append(j.ranks, r)
			j.ws = append(j.ws, WorkerStatus{Rank: r, State: workerStarting})
		}
	}
	if len(j.ranks) == 0 && p.Resume == nil { // a resumed job's hosts hold replicas
		j.fail(fmt.Errorf("no rank of job %s is placed on host %s", p.Job, d.cfg.Name))
		return
	}
	if p.Resume != nil {
		if module, err = d.resumeModule(p); err != nil {
			d.logf("job %s from %s: %v", p.Job, peer, err)
			j.fail(err)
			return
		}
	}
	parent := ctx
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	j.stop = stop
	if p.Resume != nil && !d.addResumed(j) {
		j.fail(fmt.Errorf("job %s still runs on host %s", p.Job, d.cfg.Name))
		return
	}
	if d.testJobWait != nil {
		d.testJobWait()
	}
	if p.Resume == nil && !d.addJob(j) {
		j.fail(fmt.Errorf("host %s already has a job %s", d.cfg.Name, p.Job))
		return
	}
	defer d.endJob(j)
	d.logf("job %s from %s: ranks %v of %d (%s), failure timeout %v", j.id, peer, j.ranks, j.n, j.module, j.failureTimeout)
	if err := d.runPrepared(ctx, j, p, module); err != nil {
		if j.detached && errors.Is(err, driver.ErrEpochsKept) {
			d.takeOverLater(parent, j) // detach_takeover.go
		}
		j.setState(stateFailed)
		j.fail(err)
		d.logf("job %s: %v", j.id, err)
	}
}

func (d *Daemon) runPrepared(ctx context.Context, j *job, p prepareMsg, module []byte) error {
	mounts, inputs, err := d.resolveMounts(p.Mounts)
	if err != nil {
		return err
	}
	qt, err := transport.ListenQUIC(transport.QUICConfig{
		Shared: d.tr,
		ALPN:   transport.JobALPN(j.id),
		TLS:    d.tls,
		HostID: d.cfg.Name,
		Logf:   func(format string, args ...any) { d.logf("job %s: "+format, append([]any{j.id}, args...)...) },
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	j.links = qt
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		j.links = nil
		d.mu.Unlock()
		qt.Close()
	}()
	peers := map[string]chan struct{}{} // peer host → link-down signal
	for _, h := range append(slices.Clone(p.Placement), resumeLive(p)...) {
		if h != d.cfg.Name {
			peers[h] = make(chan struct{}, 1)
		}
	}
	var share *driver.Share
	if p.CheckpointEvery > 0 {
		if share, err = d.openShare(j, p, module); err != nil {
			return err
		}
		defer d.closeShare(j)
	}
	newEp := func(inc uint64, route func(uint32) transport.HostID, restoring []uint32) (*transport.Endpoint, error) {
		var ahead func(uint32, uint64)
		if share != nil {
			ahead = share.EpochAhead
		}
		return transport.NewEndpoint(transport.EndpointConfig{
			Host:        transport.HostID(d.cfg.Name),
			Route:       route,
			ClusterID:   d.clusterID,
			Job:         p.Job,
			Incarnation: inc,
			Restoring:   restoring,
			// A job without checkpoints needs no sender logs; with them, a
			// message leaves its sender's log once a committed checkpoint
			// of its receiver covers it, and a rank takes its checkpoint of
			// epoch e before it is given a message stamped e.
			StableOnAck:     share == nil,
			HoldLaterEpochs: share != nil,
			OnEpochAhead:    ahead,
			OnLinkDown: func(h transport.HostID, err error) {
				if c, ok := peers[string(h)]; ok {
					select {
					case c <- struct{}{}:
					default:
					}
				}
			},
			Logf: func(format string, args ...any) { d.logf("job %s: "+format, append([]any{j.id}, args...)...) },
		})
	}
	ep, err := newEp(0, func(r uint32) transport.HostID { return transport.HostID(p.Placement[r]) }, nil)
	if err != nil {
		return err
	}
	d.mu.Lock()
	j.ep = ep
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		ep := j.ep
		d.mu.Unlock()
		ep.Close()
		d.endLinks(j)
	}()
	if share != nil {
		share.NewEndpoint = func(inc uint64, place []ckpt.HostID) (*transport.Endpoint, error) {
			return d.newIncarnation(j, inc, place, peers, newEp)
		}
	}
	// A cancel that does not come from the submitter (by hand, or the
	// host shutting down) must not wait for it: it ends the reads of the
	// job's stream, and output that the submitter does not take within
	// outputGrace, which would keep a worker waiting in a write.
	ioStopped := make(chan struct{})
	stopIO := context.AfterFunc(ctx, func() {
		j.str.CancelRead(1)
		j.str.SetWriteDeadline(time.Now().Add(outputGrace))
		close(ioStopped)
	})
	defer stopIO()
	if err := j.out.sendJSON(msgReady, readyMsg{Host: d.cfg.Name, Port: qt.Addr().(*net.UDPAddr).Port, Inputs: inputs}); err != nil {
		return err
	}
	t, body, err := readMsg(j.str)
	if err != nil || t == msgCancel {
		if ctx.Err() == nil {
			j.cancel(errors.New("cancelled by the submitter before it started"))
		}
		d.endCancelled(ctx, j, stopIO, ioStopped)
		return nil
	}
	var start startMsg
	if t != msgStart {
		return fmt.Errorf("%w: %s message instead of START", ErrProtocol, t)
	}
	if err := decodeJSON(t, body, &start); err != nil {
		return err
	}
	for h := range peers {
		if start.Addrs[h] == "" {
			return fmt.Errorf("%w: START gives no address for host %s", ErrProtocol, h)
		}
	}
	j.mu.Lock()
	j.peers = map[string]string{}
	for h := range peers {
		j.peers[h] = start.Addrs[h]
	}
	j.self = start.Addrs[d.cfg.Name]
	j.mu.Unlock()

	// The submitter's END, CANCEL or a broken stream.
	endc := make(chan struct{})
	go func() {
		t, body, err := readMsg(j.str)
		switch {
		case err == nil && t == msgEnd:
			close(endc)
		case err == nil && t == msgError:
			var e errorMsg
			decodeJSON(t, body, &e)
			j.cancel(fmt.Errorf("the submitter gave up: %s", e.Error))
		case err == nil:
			j.cancel(errors.New(whyBySubmitter))
		default:
			d.submitterGone(ctx, j) // detach_takeover.go
		}
	}()
	// Stop keeping links before the endpoint and transport close.
	lctx, stopLinks := context.WithCancel(ctx)
	defer stopLinks()
	go d.acceptLinks(lctx, j, qt, peers)
	for h, down := range peers {
		if d.cfg.Name < h {
			go d.dialLinks(lctx, j, qt, h, start.Addrs[h], down)
		}
	}

	if share != nil {
		// The share ends once every rank of the job has (END): until
		// then a recovery may run its ranks again.
		stopShare := make(chan struct{})
		var once sync.Once
		endShare := func() { once.Do(func() { close(stopShare) }) }
		defer endShare()
		go func() {
			select {
			case <-endc:
				endShare()
			case <-ctx.Done():
			}
		}()
		if err := d.startShare(j, share, start.Addrs, stopShare); err != nil {
			return err
		}
		share.Exited = func(res host.RanksResult) { d.sendExit(j, res, false) }
	}
	j.setState(stateRunning)
	j.setWorkers(workerRunning)
	res, err := driver.RunShare(ctx, driver.Config{
		Share:      share,
		Module:     module,
		ModuleName: p.Module,
		N:          p.N,
		Ranks:      j.ranks,
		Args:       p.Args,
		Env:        p.Env,
		Mounts:     mounts,
		RankOutput: func(r int, stream byte) io.Writer { return output{d, j, r, stream} },
		Endpoint:   ep,
		CacheDir:   filepath.Join(d.cfg.DataDir, "cache"),
		Log:        logWriter{d, j.id},
		Verbose:    d.cfg.Verbose,
		Metrics:    d.metrics.Jobs(),
		Status:     j.report,
	})
	if err != nil {
		return err
	}
	cancelled := context.Cause(ctx) != nil
	if share != nil {
		// Its ranks' exits went as they came (Exited); it returns once
		// the job has ended everywhere, or was cancelled.
		if cancelled {
			d.endCancelled(ctx, j, stopIO, ioStopped)
			return nil
		}
		d.endState(j, res)
		return nil
	}
	if !d.sendExit(j, res, cancelled) {
		j.setState(stateCancelled)
		return nil
	}
	if cancelled {
		d.endCancelled(ctx, j, stopIO, ioStopped)
		return nil
	}
	// Keep the endpoint until every rank of the job has ended: messages
	// sent by ranks that ended here may still need a retransmit.
	select {
	case <-endc:
		d.endState(j, res)
	case <-ctx.Done():
		j.setState(stateCancelled)
		d.logf("job %s: %s", j.id, j.status().State)
	}
	return nil
}

// endState marks a job that ended everywhere (END) failed or ended, by
// how its ranks here did.
func (d *Daemon) endState(j *job, res host.RanksResult) {
	if _, err := res.Outcome(); err != nil {
		j.setState(stateFailed)
	} else {
		j.setState(stateEnded)
	}
	d.logf("job %s: %s", j.id, j.status().State)
}

// sendExit records how the ranks here ended and tells the submitter,
// unless the job was cancelled; it reports false if the submitter cannot
// be told.
func (d *Daemon) sendExit(j *job, res host.RanksResult, cancelled bool) bool {
	ex := exitMsg{Ranks: res.Ranks, Codes: res.Codes, Errs: make([]string, len(res.Errs))}
	j.mu.Lock()
	for i, e := range res.Errs {
		w := j.worker(res.Ranks[i])
		w.Exit = res.Codes[i]
		switch {
		case e != nil:
			ex.Errs[i] = e.Error()
			ex.Damaged = ex.Damaged || errors.Is(e, ckpt.ErrCorrupt)
			w.State, w.Error = workerFailed, e.Error()
		case cancelled:
			w.State = workerStopped
		default:
			w.State = workerExited
		}
	}
	j.mu.Unlock()
	if cancelled {
		return true
	}
	return j.out.sendJSON(msgExit, ex) == nil
}

// worker returns the status of rank here, added if a recovery moved it
// here. The caller holds j.mu.
func (j *job) worker(rank int) *WorkerStatus {
	for i := range j.ws {
		if j.ws[i].Rank == rank {
			return &j.ws[i]
		}
	}
	j.ws = append(j.ws, WorkerStatus{Rank: rank})
	return &j.ws[len(j.ws)-1]
}

// endpoint is j's Endpoint of its incarnation now.
func (d *Daemon) endpoint(j *job) *transport.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	return j.ep
}

// redialPause is how long a link to a peer that went down waits before
// it is dialled again.
const redialPause = 20 * time.Millisecond

// outputGrace is how long a cancelled job's output may still take to
// reach a submitter that reads it.
const outputGrace = 2 * time.Second

// endCancelled marks a cancelled job so, logs why, and tells the
// submitter why, if it still listens.
func (d *Daemon) endCancelled(ctx context.Context, j *job, stopIO func() bool, ioStopped <-chan struct{}) {
	j.setState(stateCancelled)
	why := context.Cause(ctx)
	d.logf("job %s cancelled: %v", j.id, why)
	if !stopIO() {
		<-ioStopped // its deadline first, then ours
	}
	j.str.SetWriteDeadline(time.Now().Add(outputGrace))
	j.fail(why)
}

// acceptLinks adds the links that the job's peers dial.
func (d *Daemon) acceptLinks(ctx context.Context, j *job, qt *transport.QUICTransport, peers map[string]chan struct{}) {
	for {
		h, l, err := qt.Accept(ctx)
		if err != nil {
			return
		}
		if _, ok := peers[string(h)]; !ok || string(h) > d.cfg.Name {
			d.metrics.RefusedPeer(metrics.RefusedNotInJob)
			d.logf("job %s: link from host %s, which has no part in the job: refused", j.id, h)
			l.Close()
			continue
		}
		d.endpoint(j).AddLink(h, d.withFaults(l, h))
	}
}

// dialLinks keeps a link to peer h: it dials, and dials again whenever
// the link goes down (the job's Endpoint of a new incarnation needs new
// links), until ctx ends.
func (d *Daemon) dialLinks(ctx context.Context, j *job, qt *transport.QUICTransport, h, addr string, down <-chan struct{}) {
	wait := 50 * time.Millisecond
	logged := false
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, l, err := qt.Dial(dctx, addr)
		cancel()
		switch {
		case err == nil && string(got) != h:
			d.metrics.RefusedPeer(metrics.RefusedWrongHost)
			d.logf("job %s: %s is host %s, not %s: link refused", j.id, addr, got, h)
			l.Close()
		case err == nil:
			d.endpoint(j).AddLink(got, d.withFaults(l, got))
			wait, logged = 50*time.Millisecond, false
			select {
			case <-down:
			case <-ctx.Done():
				return
			}
			// A peer moving to a new incarnation refuses links until it
			// has: a short pause, not a busy loop of handshakes.
			select {
			case <-time.After(redialPause):
			case <-ctx.Done():
				return
			}
			continue
		case errors.Is(err, transport.ErrDuplicateLink):
		default:
			if ctx.Err() == nil && !logged {
				d.logf("job %s: dial host %s at %s: %v (retrying)", j.id, h, addr, err)
				logged = true
			}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// withFaults wraps a job link in the daemon's fault injection, if any,
// seeded per peer so that both directions differ.
func (d *Daemon) withFaults(l transport.Link, peer transport.HostID) transport.Link {
	if !d.cfg.Faults.Enabled() {
		return l
	}
	f := d.cfg.Faults
	h := fnv.New64a()
	fmt.Fprintf(h, "%s>%s", d.cfg.Name, peer)
	f.Seed ^= h.Sum64()
	return transport.WithFaults(l, f)
}

// logWriter passes a job's warnings to the daemon's log.
type logWriter struct {
	d   *Daemon
	job string
}

func (w logWriter) Write(p []byte) (int, error) {
	fmt.Fprintf(w.d.cfg.Log, "librahost host %s: job %s: %s", w.d.cfg.Name, w.job, p)
	return len(p), nil
}
