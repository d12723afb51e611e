package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	driver "github.com/librahost/librahost/host/job"
)

// LogsConfig asks the hosts of a job for its output (`librahost logs`,
// `librahost attach`).
type LogsConfig struct {
	Client
	Hosts []string // control addresses; every host of the job among them
	Job   string
	// Follow prints the output as it comes until the job has ended on
	// every host; else what is kept now.
	Follow bool
	// FromNow leaves out the output written before.
	FromNow bool
	// Prefix starts every line a worker prints with "[rank] ".
	Prefix         bool
	Stdout, Stderr io.Writer
	Log            io.Writer // notes: output no longer kept
}

// JobEnd is a job's status on each of its hosts, as Logs last read it.
type JobEnd struct {
	Job   string
	Hosts []JobStatus
}

// Running reports whether a part of the job has not ended.
func (e JobEnd) Running() bool {
	return slices.ContainsFunc(e.Hosts, func(st JobStatus) bool { return st.Ended.IsZero() })
}

// Outcome is the job's exit code: 1 and the first error by rank, else
// the first non-zero exit code by rank, else 1 and why a host ended its
// part (a cancel), else 0.
func (e JobEnd) Outcome() (int, error) {
	var ws []WorkerStatus
	for _, st := range e.Hosts {
		ws = append(ws, st.Workers...)
	}
	slices.SortFunc(ws, func(a, b WorkerStatus) int { return cmp.Compare(a.Rank, b.Rank) })
	for _, w := range ws {
		if w.Error != "" {
			return 1, fmt.Errorf("job %s: rank %d: %s", e.Job, w.Rank, w.Error)
		}
	}
	for _, w := range ws {
		if w.State == workerExited && w.Exit != 0 {
			return w.Exit, nil
		}
	}
	// A host's own reason first: the submitter cancels the other hosts
	// when one host's part ends by a cancel or a failure.
	for _, echo := range []bool{false, true} {
		for _, st := range e.Hosts {
			if st.Why != "" && st.State != stateEnded && (st.Why == whyBySubmitter) == echo {
				return 1, fmt.Errorf("job %s %s: %s", e.Job, st.State, st.Why)
			}
		}
	}
	for _, st := range e.Hosts {
		if st.State != stateEnded {
			return 1, fmt.Errorf("job %s %s", e.Job, st.State)
		}
	}
	return 0, nil
}

// Logs prints the output that the hosts keep of cfg.Job, each byte once,
// and returns the job's status on each of its hosts once it has printed
// what it asked for. It refuses, in one line and before it prints, a
// job no host has, a job with ranks on a host not in cfg.Hosts, and a
// job whose output a host no longer keeps.
func Logs(ctx context.Context, cfg LogsConfig) (JobEnd, error) {
	end := JobEnd{Job: cfg.Job}
	if cfg.Job == "" || len(cfg.Job) > 64 {
		return end, fmt.Errorf("node: bad job ID %q (librahost status lists the jobs)", cfg.Job)
	}
	if len(cfg.Hosts) == 0 {
		return end, errors.New("node: no hosts to ask")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	hcs, err := cfg.dialAll(ctx, cfg.Hosts)
	if err != nil {
		return end, err
	}
	defer closeAll(hcs)
	strs := make([]*quic.Stream, len(hcs))
	heads := make([]loggedMsg, len(hcs))
	errs := make([]error, len(hcs))
	var wg sync.WaitGroup
	for i, h := range hcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			strs[i], heads[i], errs[i] = askLogs(ctx, h, logsMsg{Job: cfg.Job, Follow: cfg.Follow, FromNow: cfg.FromNow})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return end, err
	}
	var have []int // the hosts with a part of the job
	placed := map[string]bool{}
	for i, h := range heads {
		if h.Status == nil {
			continue
		}
		have = append(have, i)
		for _, p := range h.Placement {
			placed[p] = true
		}
		if h.Gone != "" {
			return end, fmt.Errorf("%w: job %s %s on host %s at %s, and %s there (a host keeps the output of its newest jobs): nothing to print",
				ErrOutputGone, cfg.Job, h.Status.State, hcs[i].id, h.Status.Ended.Local().Format(time.DateTime), h.Gone)
		}
	}
	if len(have) == 0 {
		return end, fmt.Errorf("%w %s on any of these hosts (librahost status lists the jobs)", ErrNoJob, cfg.Job)
	}
	for _, h := range hcs {
		delete(placed, h.id)
	}
	if len(placed) > 0 {
		missing := slices.Sorted(func(yield func(string) bool) {
			for h := range placed {
				if !yield(h) {
					return
				}
			}
		})
		return end, fmt.Errorf("job %s has ranks on host %s too, which --hosts does not name: give the address of every host of the job", cfg.Job, strings.Join(missing, ", "))
	}

	p := newPrinter(cfg)
	defer p.flush()
	ends := make([]JobStatus, len(have))
	errs = make([]error, len(have))
	for k, i := range have {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ends[k], errs[k] = readLogs(strs[i], hcs[i], p)
		}()
	}
	wg.Wait()
	end.Hosts = ends
	return end, errors.Join(errs...)
}

// askLogs opens a LOGS stream to h and reads the host's first LOGGED.
func askLogs(ctx context.Context, h *hostConn, m logsMsg) (*quic.Stream, loggedMsg, error) {
	var head loggedMsg
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, head, hostError(h.addr, err)
	}
	if err := writeJSON(str, msgLogs, m); err != nil {
		return nil, head, hostError(h.addr, err)
	}
	str.Close()
	context.AfterFunc(ctx, func() { str.CancelRead(1) })
	t, b, err := readMsg(str)
	switch {
	case err != nil:
		return nil, head, hostError(h.addr, err)
	case t == msgError:
		var e errorMsg
		decodeJSON(t, b, &e)
		return nil, head, fmt.Errorf("host %s: %s", h.id, e.Error)
	case t != msgLogged:
		return nil, head, fmt.Errorf("%w: host %s sent %s instead of LOGGED", ErrProtocol, h.id, t)
	}
	err = decodeJSON(t, b, &head)
	return str, head, err
}

// readLogs prints the OUTPUT a host sends until its last LOGGED.
func readLogs(str *quic.Stream, h *hostConn, p *printer) (JobStatus, error) {
	for {
		t, b, err := readMsg(str)
		if err != nil {
			return JobStatus{}, fmt.Errorf("%w: host %s at %s: %v", ErrHostLost, h.id, h.addr, describeStreamError(err))
		}
		switch t {
		case msgOutput:
			o, err := decodeOutput(b)
			if err != nil {
				return JobStatus{}, fmt.Errorf("host %s: %v", h.id, err)
			}
			p.print(o)
		case msgLogged:
			var m loggedMsg
			if err := decodeJSON(t, b, &m); err != nil {
				return JobStatus{}, err
			}
			if m.Status == nil {
				return JobStatus{}, fmt.Errorf("%w: host %s forgot the job", ErrProtocol, h.id)
			}
			return *m.Status, nil
		case msgError:
			var e errorMsg
			decodeJSON(t, b, &e)
			return JobStatus{}, errors.New(e.Error)
		default:
			return JobStatus{}, fmt.Errorf("%w: host %s sent %s", ErrProtocol, h.id, t)
		}
	}
}

// printer writes the output of a job's ranks, each byte once, a line
// at a time per rank and stream.
type printer struct {
	cfg     LogsConfig
	mu      sync.Mutex // serialises print
	outMu   sync.Mutex // the writers'
	outs    map[[2]int]io.Writer
	printed outputPrinted
}

func newPrinter(cfg LogsConfig) *printer {
	return &printer{cfg: cfg, outs: map[[2]int]io.Writer{}, printed: outputPrinted{}}
}

func (p *printer) print(o outputMsg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := [2]int{o.rank, int(o.stream)}
	w, ok := p.outs[k]
	if !ok {
		dst := p.cfg.Stdout
		if o.stream == 2 {
			dst = p.cfg.Stderr
		}
		if w = driver.NewLineWriter(dst, &p.outMu, o.rank, p.cfg.Prefix); w == nil {
			w = io.Discard
		}
		p.outs[k] = w
		if o.off > 0 && !p.cfg.FromNow {
			name := map[byte]string{1: "stdout", 2: "stderr"}[o.stream]
			fmt.Fprintf(p.cfg.Log, "librahost: job %s: the first %d bytes of rank %d's %s are no longer kept\n", p.cfg.Job, o.off, o.rank, name)
		}
	}
	if b := p.printed.fresh(o); b != nil {
		w.Write(b)
	}
}

func (p *printer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.outs {
		if f, ok := w.(interface{ Flush() error }); ok {
			f.Flush()
		}
	}
}
