package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/host/jobctl"
	"github.com/librahost/librahost/host/jobrec"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/transport"
)

// Config configures a host daemon.
type Config struct {
	// Name is the host's ID: its certificate in ClusterDir is used.
	Name string
	// Listen is the UDP address of the host ("host:port"): control
	// connections and the links of every job use it.
	Listen     string
	DataDir    string // modules and the compilation cache
	ClusterDir string
	// Faults, when enabled, are applied to every job link (tests and
	// fault-injection runs; see transport.ParseFaults).
	Faults transport.Faults
	// FailureTimeout is how long a host of a job may be silent on its
	// control stream before it is declared dead, for the jobs whose
	// submitter gives none. Default ckpt.DefaultFailureTimeout (2 s).
	FailureTimeout time.Duration
	Log            io.Writer // one line per event
	// MaxOutput bounds the output kept of each job (its newest), for
	// `librahost logs` and `attach`. Default jobrec.DefaultMaxOutput.
	MaxOutput int64
	// Verbose adds a line per checkpoint and rank of each job: its pause
	// and its own capture's time (host -v).
	Verbose bool
}

// Daemon is a running host daemon.
type Daemon struct {
	cfg Config
	// testLogsWait, if set, is called when a LOGS waits for a job's
	// output log to start.
	testLogsWait func()
	// testJobWait, if set, is called when a job's part has come, before
	// it is listed; testLogsUnknown when a LOGS asks for a job not here.
	testJobWait, testLogsUnknown func()
	tls                          *tls.Config // for job transports
	ctl                          *tls.Config // for control connections, both ways
	clusterID                    string
	ln                           *quic.Listener
	udp                          *net.UDPConn
	tr                           *quic.Transport
	started                      time.Time
	metrics                      *metrics.Host
	jobctl                       *jobctl.Hub // the control streams between the hosts of jobs
	recs                         *jobrec.DB  // the jobs' records and output, in --data

	drained atomic.Bool // takes no new jobs (daemon_migrate.go)

	mu    sync.Mutex
	jobs  map[string]*job
	ended []*job
	links transport.Counters // of the jobs whose links have closed
	wg    sync.WaitGroup
}

// controlQUIC is the QUIC configuration of control connections: keep-alives
// let both ends notice a dead peer within IdleTimeout.
func controlQUIC() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:      time.Second,
		MaxIdleTimeout:       10 * time.Second,
		HandshakeIdleTimeout: 5 * time.Second,
		MaxIncomingStreams:   256,
	}
}

// Listen checks cfg, loads the host's certificate and opens its control
// address.
func Listen(cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Name == "" || cfg.Listen == "" || cfg.DataDir == "" || cfg.ClusterDir == "" {
		return nil, errors.New("node: a host needs a name, a listen address, a data directory and a cluster directory")
	}
	if cfg.FailureTimeout < 0 {
		return nil, fmt.Errorf("node: failure timeout %v: want more than 0", cfg.FailureTimeout)
	}
	ctl, err := transport.LoadControlTLS(cfg.ClusterDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	data, err := transport.LoadHostTLS(cfg.ClusterDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	id, err := transport.ClusterID(data)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "cache"), 0o755); err != nil {
		return nil, fmt.Errorf("node: data directory: %v", err)
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen %s: %v", cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("node: listen %s: %v", cfg.Listen, err)
	}
	d := &Daemon{
		cfg:       cfg,
		tls:       data,
		ctl:       ctl,
		clusterID: id,
		udp:       udp,
		tr:        &quic.Transport{Conn: udp, StatelessResetKey: transport.StatelessResetKey(data.Certificates[0])},
		started:   time.Now(),
		jobs:      make(map[string]*job),
	}
	d.loadDrained()
	if err := d.openRecords(); err != nil {
		udp.Close()
		return nil, err
	}
	d.metrics = metrics.NewHost(metrics.HostConfig{
		Name: cfg.Name, Cluster: id, Started: d.started, Snapshot: d.metricsSnapshot,
		JobStates:    []string{statePreparing, stateRunning},
		EndStates:    []string{stateEnded, stateFailed, stateCancelled},
		WorkerStates: []string{workerStarting, workerRunning, workerExited, workerFailed, workerStopped},
	})
	d.jobctl, err = jobctl.NewHub(jobctl.HubConfig{TLS: data, Transport: d.tr,
		Logf: func(format string, args ...any) { d.logf(format, args...) }})
	if err != nil {
		udp.Close()
		d.recs.Close()
		return nil, err
	}
	// One socket for everything: control connections, the links of every
	// job, each job's under its own ALPN (transport.JobALPN), and the
	// control streams between the hosts of jobs (jobctl.ALPN).
	replicaTLS, err := transport.WithALPN(data, replicaALPN)
	if err != nil {
		udp.Close()
		d.recs.Close()
		return nil, err
	}
	lc := transport.SharedListenTLS(ctl, data, func(job string) bool { return d.jobLinks(job) != nil })
	choose := lc.GetConfigForClient
	lc.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(chi.SupportedProtos, jobctl.ALPN) {
			return d.jobctl.TLSConfig(), nil
		}
		if slices.Contains(chi.SupportedProtos, replicaALPN) {
			return replicaTLS, nil
		}
		c, err := choose(chi)
		if err != nil {
			d.metrics.RefusedPeer(metrics.RefusedProtocol)
		}
		return c, err
	}
	qc := controlQUIC()
	transport.TuneAcceptConfig(qc)
	d.ln, err = d.tr.Listen(lc, qc)
	if err != nil {
		udp.Close()
		d.recs.Close()
		return nil, fmt.Errorf("node: listen %s: %v", cfg.Listen, err)
	}
	return d, nil
}

// jobLinks returns the link transport of a job running here, or nil.
func (d *Daemon) jobLinks(id string) *transport.QUICTransport {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j := d.jobs[id]; j != nil {
		return j.links
	}
	return nil
}

// Addr is the control address the daemon listens on.
func (d *Daemon) Addr() net.Addr { return d.udp.LocalAddr() }

// ClusterID is the ID of the daemon's cluster.
func (d *Daemon) ClusterID() string { return d.clusterID }

func (d *Daemon) logf(format string, args ...any) {
	fmt.Fprintf(d.cfg.Log, "librahost host %s: "+format+"\n", append([]any{d.cfg.Name}, args...)...)
}

// Serve answers control connections until ctx ends, then cancels the jobs
// still running and closes the daemon.
func (d *Daemon) Serve(ctx context.Context) error {
	defer d.close()
	for {
		conn, err := d.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("node: %v", err)
		}
		proto := conn.ConnectionState().TLS.NegotiatedProtocol
		if proto == jobctl.ALPN {
			d.jobctl.ServeConn(conn)
			continue
		}
		if proto == replicaALPN {
			d.wg.Add(1)
			go d.serveReplica(ctx, conn)
			continue
		}
		if job, ok := transport.JobFromALPN(proto); ok {
			if qt := d.jobLinks(job); qt != nil {
				qt.ServeConn(conn)
			} else {
				d.metrics.RefusedPeer(metrics.RefusedJobEnded)
				conn.CloseWithError(1, "the job has ended")
			}
			continue
		}
		peer, err := transport.PeerHostID(conn.ConnectionState().TLS)
		if err != nil {
			d.metrics.RefusedPeer(metrics.RefusedNoHostID)
			conn.CloseWithError(1, "no host certificate")
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.serveConn(ctx, conn, string(peer))
		}()
	}
}

func (d *Daemon) close() {
	d.mu.Lock()
	for _, j := range d.jobs {
		j.cancel(errors.New("the host is shutting down"))
	}
	d.mu.Unlock()
	d.ln.Close()
	d.wg.Wait()
	d.jobctl.Close()
	d.tr.Close()
	d.udp.Close()
	d.recs.Close()
}

// serveConn answers the streams of one control connection.
func (d *Daemon) serveConn(ctx context.Context, conn *quic.Conn, peer string) {
	defer conn.CloseWithError(0, "")
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.serveStream(ctx, str, peer)
		}()
	}
}

func (d *Daemon) serveStream(ctx context.Context, str *quic.Stream, peer string) {
	defer str.Close()
	t, body, err := readMsg(str)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			d.logf("control stream from %s: %v: disconnected", peer, err)
		}
		if errors.Is(err, ErrProtocol) {
			d.metrics.ControlRequest(metrics.RequestInvalid)
			writeJSON(str, msgError, errorMsg{Error: err.Error()})
		}
		str.CancelRead(1)
		return
	}
	switch t {
	case msgStatusQuery:
		d.metrics.ControlRequest(metrics.RequestStatus)
		writeJSON(str, msgStatus, d.status())
	case msgPrepare:
		d.metrics.ControlRequest(metrics.RequestPrepare)
		if !d.refuseDrained(str) {
			d.runJob(ctx, str, peer, body)
		}
	case msgCancel:
		d.metrics.ControlRequest(metrics.RequestCancel)
		d.cancelJob(ctx, str, peer, body)
	case msgCheckpoint:
		d.checkpointJob(str, peer, body)
	case msgMigrate:
		d.migrateJob(str, peer, body)
	case msgLogs:
		d.serveLogs(ctx, str, peer, body)
	case msgDetach:
		d.serveDetach(ctx, str, peer, body)
	case msgHeld:
		d.serveHeld(str, peer, body)
	case msgPrinted:
		d.servePrinted(str, peer, body)
	default:
		d.metrics.ControlRequest(metrics.RequestInvalid)
		d.logf("control stream from %s: %s message first: disconnected", peer, t)
		writeJSON(str, msgError, errorMsg{Error: fmt.Sprintf("unexpected %s message", t)})
		str.CancelRead(1)
	}
}

// Status reports the host, its jobs and their workers, as `librahost
// status` shows them.
func (d *Daemon) Status() HostStatus { return d.status() }

// status reports the host, its jobs and their workers.
func (d *Daemon) status() HostStatus {
	d.mu.Lock()
	st := HostStatus{
		Host:    d.cfg.Name,
		Cluster: d.clusterID,
		Listen:  d.Addr().String(),
		Started: d.started,
		Jobs:    []JobStatus{},
	}
	ended := slices.Clone(d.ended)
	for _, j := range d.jobs {
		st.Jobs = append(st.Jobs, j.status())
	}
	d.mu.Unlock()
	st.Jobs = append(d.endedStatus(ended), st.Jobs...)
	return st
}

// addJob registers a new job, and records it; false if its ID is taken
// (by a job here, or in the records).
func (d *Daemon) addJob(j *job) bool {
	if !d.addLive(j) {
		return false
	}
	d.recordStart(j)
	return true
}

func (d *Daemon) addLive(j *job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.jobs[j.id]; dup || d.recorded(j.id) {
		return false
	}
	for _, e := range d.ended {
		if e.id == j.id {
			return false
		}
	}
	d.jobs[j.id] = j
	return true
}

// findJob returns the job of that ID, running or among the ended ones.
func (d *Daemon) findJob(id string) *job {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j := d.jobs[id]; j != nil {
		return j
	}
	for _, j := range d.ended {
		if j.id == id {
			return j
		}
	}
	return nil
}

// cancelWait bounds how long a host waits for a cancelled job's workers
// to stop before it answers `librahost cancel`.
const cancelWait = 30 * time.Second

// refuseRequest logs why a control request from peer could not be read
// and answers it with the same error.
func (d *Daemon) refuseRequest(str io.Writer, peer string, err error) {
	d.logf("control stream from %s: %v", peer, err)
	writeJSON(str, msgError, errorMsg{Error: err.Error()})
}

// cancelJob stops a job by hand (`librahost cancel`) and answers with its
// status once its workers have stopped.
func (d *Daemon) cancelJob(ctx context.Context, str *quic.Stream, peer string, body []byte) {
	var c cancelMsg
	if err := decodeJSON(msgCancel, body, &c); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	j := d.findJob(c.Job)
	if j == nil {
		writeJSON(str, msgCancelled, JobStatus{ID: c.Job}) // no state: no such job here
		return
	}
	select {
	case <-j.done:
	default:
		d.logf("job %s: cancelled by `librahost cancel` from host %s", j.id, peer)
		j.cancel(fmt.Errorf("cancelled by `librahost cancel` from host %s", peer))
		select {
		case <-j.done:
		case <-time.After(cancelWait):
		case <-ctx.Done():
		}
	}
	writeJSON(str, msgCancelled, j.status())
}

// endJob moves a job to the ended list.
func (d *Daemon) endJob(j *job) {
	defer close(j.done)
	defer d.recordEnd(j) // once it is among the ended
	st := j.status()
	d.metrics.JobEnded(st.State, st.Ended.Sub(st.Started))
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.jobs, j.id)
	d.ended = append(d.ended, j)
	if len(d.ended) > keepEnded {
		d.ended = d.ended[len(d.ended)-keepEnded:]
	}
}
