package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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
// and returns the job's status on each of its hosts that answered once it
// has printed what it asked for. It refuses, in one line and before it
// prints, a job no host has, a job with ranks on a host not in
// cfg.Hosts, and a job whose output a host no longer keeps. A host of the
// job that is down (no answer, or lost while followed) does not stop it:
// it prints what the others keep and says in one line on cfg.Log whose
// output is missing.
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
	tc, err := cfg.tlsConfig()
	if err != nil {
		return end, err
	}
	timeout := cfg.dialTimeout()
	as, errs := eachHost(cfg.Hosts, func(a string) (asked, error) {
		h, err := dialHost(ctx, a, tc, timeout)
		if err != nil {
			return asked{}, err
		}
		str, head, err := askLogs(ctx, h, logsMsg{Job: cfg.Job, Follow: cfg.Follow, FromNow: cfg.FromNow})
		return asked{h, str, head}, err
	})
	defer func() {
		for _, a := range as {
			if a.h != nil {
				a.h.conn.CloseWithError(0, "")
			}
		}
	}()
	askLate(ctx, cfg, as, errs, timeout)
	var down, failed []error // hosts that did not answer; the other failures
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrHostDown):
			down = append(down, err)
		case err != nil:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return end, errors.Join(failed...)
	}
	var have []int // the hosts with a part of the job
	answered := map[string]bool{}
	var placement []string
	for i, a := range as {
		if errs[i] != nil {
			continue
		}
		answered[a.h.id] = true
		if a.head.Status == nil {
			continue
		}
		have = append(have, i)
		placement = a.head.Placement
		if a.head.Gone != "" {
			return end, fmt.Errorf("%w: job %s %s on host %s at %s, and %s there (a host keeps the output of its newest jobs): nothing to print",
				ErrOutputGone, cfg.Job, a.head.Status.State, a.h.id, a.head.Status.Ended.Local().Format(time.DateTime), a.head.Gone)
		}
	}
	if len(have) == 0 {
		if len(down) > 0 {
			return end, errors.Join(down...)
		}
		return end, fmt.Errorf("%w %s on any of these hosts (librahost status lists the jobs)", ErrNoJob, cfg.Job)
	}
	var missing []string // hosts of the job that did not answer
	for _, h := range placement {
		if !answered[h] && !slices.Contains(missing, h) {
			missing = append(missing, h)
		}
	}
	slices.Sort(missing)
	if len(missing) > len(down) {
		return end, fmt.Errorf("job %s has ranks on host %s too, which --hosts does not name: give the address of every host of the job", cfg.Job, strings.Join(missing, ", "))
	}
	p := newPrinter(cfg, placement)
	defer p.flush()
	if len(missing) > 0 {
		p.missing(missing, false, errors.Join(down...))
	}
	ends := make([]JobStatus, len(have))
	errs = make([]error, len(have))
	var wg sync.WaitGroup
	for k, i := range have {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ends[k], errs[k] = readLogs(as[i].str, as[i].h, p)
			if errors.Is(errs[k], ErrHostLost) {
				p.missing([]string{as[i].h.id}, true, errs[k])
				errs[k] = nil
			}
		}()
	}
	wg.Wait()
	for k, st := range ends {
		if st.ID != "" || errs[k] != nil {
			end.Hosts = append(end.Hosts, st)
		}
	}
	return end, errors.Join(errs...)
}

// lateAsk is how often a host of a running job that does not know the
// job yet is asked again.
const lateAsk = 50 * time.Millisecond

// askLate asks again, until it knows the job or for up to timeout, each
// host that answered it has no such job while another host of it runs a
// part: the job reaches its hosts one after another, and a host asked
// before it got its part would otherwise not be followed. One that still
// does not know it is taken for down.
func askLate(ctx context.Context, cfg LogsConfig, as []asked, errs []error, timeout time.Duration) {
	hosts := map[string]bool{} // the job's, as a host that runs a part says
	for i, a := range as {
		if errs[i] == nil && a.head.Status != nil && a.head.Status.Ended.IsZero() {
			for _, h := range a.head.Placement {
				hosts[h] = true
			}
		}
	}
	var late []int
	for i, a := range as {
		if errs[i] == nil && a.head.Status == nil && hosts[a.h.id] {
			late = append(late, i)
		}
	}
	if len(late) == 0 {
		return
	}
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for _, i := range late {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(lateAsk):
				}
				str, head, err := askLogs(ctx, as[i].h, logsMsg{Job: cfg.Job, Follow: cfg.Follow, FromNow: cfg.FromNow})
				if err != nil || head.Status != nil {
					as[i].str, as[i].head, errs[i] = str, head, err
					return
				}
			}
			errs[i] = fmt.Errorf("%w: host %s at %s has had no part of job %s for %v while its other hosts run it", ErrHostDown, as[i].h.id, as[i].h.addr, cfg.Job, timeout)
		}()
	}
	wg.Wait()
}

// asked is a host asked for a job's output: its connection, its LOGS
// stream and its first answer.
type asked struct {
	h    *hostConn
	str  *quic.Stream
	head loggedMsg
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
	cfg       LogsConfig
	placement []string   // the host of each rank at the job's start
	mu        sync.Mutex // serialises print
	outMu     sync.Mutex // the writers'
	outs      map[[2]int]io.Writer
	printed   outputPrinted
	// gone are the ranks whose first host's output is missing: a later
	// host's output of them starts past their start (a recovery), which
	// the note of the missing host covers.
	gone map[int]bool
}

func newPrinter(cfg LogsConfig, placement []string) *printer {
	return &printer{cfg: cfg, placement: placement, outs: map[[2]int]io.Writer{}, printed: outputPrinted{}, gone: map[int]bool{}}
}

// missing says in one line that the output hosts keep of their ranks is
// missing, and why: they did not answer, or one was lost while followed
// (lost), when what it kept and had not sent yet is missing unless the
// job recovers its ranks on another host.
func (p *printer) missing(hosts []string, lost bool, why error) {
	var nums []string
	p.mu.Lock()
	defer p.mu.Unlock()
	for r, h := range p.placement {
		if slices.Contains(hosts, h) {
			nums = append(nums, strconv.Itoa(r))
			p.gone[r] = true
		}
	}
	what := "host " + hosts[0]
	if len(hosts) > 1 {
		what = "hosts " + strings.Join(hosts, ", ")
	}
	rank := "rank "
	if len(nums) > 1 {
		rank = "ranks "
	}
	p.outMu.Lock()
	defer p.outMu.Unlock()
	ranks := rank + strings.Join(nums, ", ")
	reason := strings.ReplaceAll(why.Error(), "\n", "; ")
	if lost {
		fmt.Fprintf(p.cfg.Log, "librahost: job %s: the output of %s that %s had not sent yet is missing unless the job recovers them on another host: %s\n",
			p.cfg.Job, ranks, what, reason)
		return
	}
	fmt.Fprintf(p.cfg.Log, "librahost: job %s: the output %s keeps of %s is missing (what the other hosts keep is printed): %s\n",
		p.cfg.Job, what, ranks, reason)
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
		if o.off > 0 && !p.cfg.FromNow && !p.gone[o.rank] {
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
