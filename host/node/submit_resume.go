package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/progress"
)

// A job with checkpoints whose coordinator's host is lost stops on the
// other hosts with its committed epochs kept. Its submitter tells them
// what it printed of each rank's streams (PRINTED) and exits with one
// line saying how to go on: `librahost submit --resume JOB --hosts …`
// (SubmitResume) asks each host given what it holds (HELD?), resumes
// from the newest committed epoch whose every rank's checkpoint one of
// them holds, places each rank on a host that holds it (the coordinator's
// rule, ckpt.EpochCoordinator.Resume, run here to know the placement) and
// runs the coordinator on the first host given. Output goes on where its
// first submitter stopped printing: each byte is printed once over the
// two (by its offset in its rank's stream), as across a recovery; if no
// host kept what was printed, from the epoch's positions.
//
// A job that failed on a rank's damaged checkpoint (a chunk that did not
// read back at a lazy restore or a recovery's check: exitMsg and
// errorMsg's Damaged) also stops with its epochs kept; its submitter
// tells the hosts what it printed and says how to resume, as above. The
// host that refused the epoch no longer offers it (holds), so the resume
// falls back. A guest's own failure is the job's result: not so.

// keptWait bounds how long a submitter whose job stopped waits for each
// host left to keep what it printed: the hosts are alive, only slow
// when the machine is loaded, and without it the resume prints again.
const keptWait = 30 * time.Second

// stopKept tells the hosts left what was printed of a job that stopped
// with its committed epochs kept, and returns failure with how to resume
// (from: the epoch it resumes from).
func (s *submission) stopKept(ctx context.Context, failure error, lost []bool, printed outputPrinted, from string) error {
	var offs []printedOff
	for k, off := range printed {
		offs = append(offs, printedOff{Rank: k[0], Stream: byte(k[1]), Off: off})
	}
	slices.SortFunc(offs, func(a, b printedOff) int {
		return cmp.Or(cmp.Compare(a.Rank, b.Rank), cmp.Compare(a.Stream, b.Stream))
	})
	var left []string
	var idx []int
	for i, h := range s.hcs {
		if !lost[i] {
			left, idx = append(left, h.addr), append(idx, i)
		}
	}
	_, errs := eachHost(left, func(a string) (struct{}, error) {
		i := idx[slices.Index(left, a)]
		return struct{}{}, s.tellPrinted(ctx, s.hcs[i], offs)
	})
	told := 0
	for _, err := range errs {
		if err == nil {
			told++
		} else {
			fmt.Fprintf(s.cfg.Log, "librahost submit: %v\n", err)
		}
	}
	how := fmt.Sprintf("`librahost submit --resume %s --cluster %s --hosts %s` continues it from %s", s.job, s.cfg.ClusterDir, strings.Join(left, ","), from)
	if told == 0 {
		how += " (printing again what it printed since)"
	}
	return fmt.Errorf("%w; %s", failure, how)
}

// tellPrinted gives host h what was printed of the job.
func (s *submission) tellPrinted(ctx context.Context, h *hostConn, offs []printedOff) error {
	ctx, cancel := context.WithTimeout(ctx, keptWait)
	defer cancel()
	var k keptMsg
	if err := ask(ctx, h, msgPrinted, printedMsg{Job: s.job, Printed: offs}, msgKept, &k); err != nil {
		return err
	}
	if k.Error != "" {
		return errors.New(k.Error)
	}
	return nil
}

// ask sends host h a request of its own stream, t with v, and decodes
// its answer, of type want, into reply.
func ask(ctx context.Context, h *hostConn, t msgType, v any, want msgType, reply any) error {
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return hostError(h.addr, err)
	}
	context.AfterFunc(ctx, func() { str.CancelRead(1); str.CancelWrite(1) })
	if err := writeJSON(str, t, v); err != nil {
		return hostError(h.addr, err)
	}
	str.Close()
	got, b, err := readMsg(str)
	switch {
	case err != nil:
		return hostError(h.addr, err)
	case got == msgError:
		var e errorMsg
		decodeJSON(got, b, &e)
		return fmt.Errorf("host %s: %s", h.id, e.Error)
	case got != want:
		return fmt.Errorf("%w: host %s sent %s instead of %s", ErrProtocol, h.id, got, want)
	}
	return decodeJSON(got, b, reply)
}

// ResumeConfig is a job to continue after it stopped with its committed
// epochs kept (`submit --resume`).
type ResumeConfig struct {
	Client
	Hosts []string // control addresses of the hosts to go on with
	Job   string
	// Prefix starts every line a worker prints with "[rank] ".
	Prefix         bool
	Stdout, Stderr io.Writer
	Log            io.Writer       // progress and host failures
	Stop           <-chan struct{} // closed: cancel the job
	// FailureTimeout: as SubmitConfig's; 0: the job's.
	FailureTimeout time.Duration
	// Started, if set, is called once every host has been told to start.
	Started func(job string)
}

// SubmitResume continues job cfg.Job on cfg.Hosts from the newest
// committed epoch they hold whole, writes its output as it comes (what
// its first submitter had not printed) and returns when every rank has
// ended, as Submit does.
func SubmitResume(ctx context.Context, cfg ResumeConfig) (int, error) {
	if cfg.Job == "" || len(cfg.Job) > 64 {
		return 1, fmt.Errorf("node: bad job ID %q (librahost status lists the jobs)", cfg.Job)
	}
	if len(cfg.Hosts) == 0 {
		return 1, errors.New("node: no hosts to resume on")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	hcs, err := cfg.dialAll(ctx, cfg.Hosts)
	if err != nil {
		return 1, err
	}
	defer closeAll(hcs)
	if err := distinctHosts(hcs); err != nil {
		return 1, err
	}
	holds, errs := eachHost(cfg.Hosts, func(a string) (holdsMsg, error) {
		return askHeld(ctx, hcs[slices.Index(cfg.Hosts, a)], cfg.Job, cfg.dialTimeout())
	})
	if err := errors.Join(errs...); err != nil {
		return 1, err
	}
	ids := make([]string, len(hcs))
	for i, h := range hcs {
		ids[i] = h.id
	}
	plan, err := planResume(cfg.Job, ids, holds)
	if err != nil {
		return 1, err
	}
	spec := plan.spec
	if cfg.FailureTimeout > 0 {
		spec.FailureTimeout = cfg.FailureTimeout
	}
	spec.Placement, spec.Resume = plan.placement, &plan.resume
	body, err := encodePrepare(spec, nil)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(cfg.Log, "librahost submit: job %s resumes from epoch %d on %s%s\n", cfg.Job, plan.resume.Epoch, strings.Join(ids, ","), plan.note)
	sc := SubmitConfig{Client: cfg.Client, Hosts: cfg.Hosts, N: spec.N, ModuleName: spec.Module, Args: spec.Args, Env: spec.Env,
		Prefix: cfg.Prefix, Stdout: cfg.Stdout, Stderr: cfg.Stderr, Log: cfg.Log, Stop: cfg.Stop,
		FailureTimeout: spec.FailureTimeout, CheckpointEvery: spec.CheckpointEvery, Replicas: spec.Replicas,
		CheckpointOverhead: spec.CheckpointOverhead, Mounts: mountsFromMsg(spec.Mounts), Started: cfg.Started}
	s := &submission{cfg: sc, hcs: hcs, job: cfg.Job, printed: plan.printed}
	s.bar = progress.New(nil, "", 0)
	defer s.bar.Done()
	return s.run(ctx, body)
}

// distinctHosts refuses two addresses of one host.
func distinctHosts(hcs []*hostConn) error {
	seen := map[string]string{}
	for _, h := range hcs {
		if a, dup := seen[h.id]; dup {
			return fmt.Errorf("node: %s and %s are the same host %s", a, h.addr, h.id)
		}
		seen[h.id] = h.addr
	}
	return nil
}

// runsWait bounds how long a resume waits for a host that is still
// ending the job (it told its submitter before its part had ended).
const runsWait = 10 * time.Second

// askHeld asks host h what it holds of job id.
func askHeld(ctx context.Context, h *hostConn, id string, timeout time.Duration) (holdsMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	var r holdsMsg
	for end := time.Now().Add(runsWait); ; {
		r = holdsMsg{}
		if err := ask(ctx, h, msgHeld, heldMsg{Job: id}, msgHolds, &r); err != nil {
			return holdsMsg{}, err
		}
		if !r.Running || time.Now().After(end) {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return holdsMsg{}, ctx.Err()
		}
	}
	if r.Running {
		return holdsMsg{}, stillRuns{r.Error}
	}
	if r.Error != "" {
		return holdsMsg{}, errors.New(r.Error)
	}
	return r, nil
}

// resumePlan is how a job resumes on the hosts given.
type resumePlan struct {
	spec      prepareMsg
	resume    resumeMsg
	placement []string // rank → host ID
	printed   outputPrinted
	note      string // why not the newest committed epoch, if not
}

// planResume chooses, from what each host given (ids, by --hosts order)
// holds of job id, the epoch to resume from and the placement: the
// newest epoch committed on one of them whose every rank's checkpoint one
// of them holds, the coordinator on the first host given. An epoch is
// never taken again once begun (a resume's coordinator begins past every
// epoch held), so a rank's checkpoint of a committed epoch is the one
// committed; the host that restores it verifies its chunks.
func planResume(id string, ids []string, holds []holdsMsg) (resumePlan, error) {
	var p resumePlan
	var notHere []string
	var spec *prepareMsg
	module := ""
	for i, h := range holds {
		switch {
		case h.NotHere != "":
			notHere = append(notHere, h.NotHere)
		case h.Spec == nil:
			return p, fmt.Errorf("%w: host %s says nothing of job %s", ErrProtocol, ids[i], id)
		case spec == nil:
			spec, module = h.Spec, h.Module
		case h.Module != module:
			return p, fmt.Errorf("node: hosts %s and %s hold different modules of job %s: resume it on hosts that ran it", ids[0], ids[i], id)
		}
	}
	if spec == nil {
		return p, fmt.Errorf("%w %s on the hosts given: %s", ErrNoJob, id, strings.Join(notHere, "; "))
	}
	if len(notHere) > 0 {
		return p, fmt.Errorf("node: job %s cannot resume on the hosts given: %s (leave it out of --hosts)", id, notHere[0])
	}
	hosts := jobHosts(spec.Placement)
	live := make([]bool, len(hosts))
	given := make([]ckpt.HostID, len(ids))
	for i, h := range ids {
		x := slices.Index(hosts, h)
		if x < 0 {
			return p, fmt.Errorf("node: host %s has no part in job %s (its hosts: %s)", h, id, strings.Join(hosts, ","))
		}
		live[x], given[i] = true, ckpt.HostID(x)
	}
	// The commit records any host given holds, newest first, and which
	// host holds which rank's checkpoint of each epoch.
	recs := map[uint64]*ckpt.CommitRecord{}
	type held struct {
		rank  int
		epoch uint64
	}
	holders := map[held][]ckpt.HostID{}
	var inc, next uint64
	p.printed = outputPrinted{}
	printedKept := false
	for i, h := range holds {
		printedKept = printedKept || h.PrintedKept
		inc = max(inc, h.Inc)
		for _, r := range h.Records {
			if r != nil && len(r.Place) == spec.N {
				recs[r.Epoch] = r
				inc = max(inc, r.Inc)
				next = max(next, r.Epoch+1)
			}
		}
		for _, c := range h.Held {
			k := held{c.Rank, c.Epoch}
			holders[k] = append(holders[k], given[i])
			next = max(next, c.Epoch+1)
		}
		for _, o := range h.Printed {
			k := [2]int{o.Rank, int(o.Stream)}
			p.printed[k] = max(p.printed[k], o.Off)
		}
	}
	epochs := make([]uint64, 0, len(recs))
	for e := range recs {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	if len(epochs) == 0 {
		return p, fmt.Errorf("node: job %s has no committed epoch on the hosts given: nothing to resume from (submit it again)", id)
	}
	var missing string
	var rec *ckpt.CommitRecord
	var hs [][]ckpt.HostID
	for i := len(epochs) - 1; i >= 0 && rec == nil; i-- {
		r := recs[epochs[i]]
		hs = make([][]ckpt.HostID, spec.N)
		whole := true
		for rank := range spec.N {
			hs[rank] = holders[held{rank, r.Epoch}]
			if len(hs[rank]) == 0 {
				if missing == "" {
					missing = fmt.Sprintf("rank %d's checkpoint of epoch %d is on no host given", rank, r.Epoch)
				}
				whole = false
				break
			}
		}
		if whole {
			rec = r
		}
	}
	if rec == nil {
		return p, fmt.Errorf("node: job %s cannot resume on the hosts given: %s (add a host that holds it)", id, missing)
	}
	if missing != "" {
		p.note = " (" + missing + ")"
	}
	if !printedKept {
		p.note += "; no host knows what its first submitter printed: its output goes on from the epoch's"
	}
	for rank := range hs {
		slices.Sort(hs[rank])
	}
	p.spec, p.spec.Resume = *spec, nil
	p.resume = resumeMsg{Epoch: rec.Epoch, Inc: inc, Next: next, Hosts: hosts, Live: live, Coordinator: given[0],
		Place: rec.Place, Holders: hs}
	place, err := resumePlace(p.resume, spec.Replicas)
	if err != nil {
		return p, fmt.Errorf("node: job %s cannot resume on the hosts given: %v", id, err)
	}
	for _, h := range place {
		p.placement = append(p.placement, hosts[h])
	}
	return p, nil
}

// resumePlace is the placement the coordinator gives a resumed job: its
// core run to its ROLLBACK.
func resumePlace(r resumeMsg, replicas int) ([]ckpt.HostID, error) {
	c, err := ckpt.NewEpochCoordinator(ckpt.ProtoConfig{Hosts: len(r.Hosts), Coordinator: r.Coordinator, Place: r.Place,
		Replicas: replicas, Inc: r.Inc, Committed: r.Epoch, Holders: r.Holders}, r.Next)
	if err != nil {
		return nil, err
	}
	c.Resume(r.Live, time.Now())
	for _, m := range c.Ready().Msgs {
		switch m.Kind {
		case ckpt.MsgRollback:
			return m.Place, nil
		case ckpt.MsgStop:
			return nil, errors.New(m.Err)
		}
	}
	return nil, errors.New("no placement")
}
