package job

import (
	"context"
	"io"
	"path/filepath"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// run runs the ranks that had not ended, with the checkpoint triggers of
// a job with a state directory.
func (j *jobRun) run(ctx context.Context) (host.RanksResult, error) {
	cfg := &j.cfg
	if err := j.endpoint(); err != nil {
		return host.RanksResult{}, err
	}
	if j.ledger != nil && j.ledger.trust != "" {
		j.logf("warning: %s", untrustedLedger(filepath.Join(cfg.StateDir, ledgerFile), j.ledger.trust))
	}
	j.outputs()
	var live []int
	for _, r := range j.ranks {
		if !j.ended[r] {
			live = append(live, r)
		}
	}
	if len(live) == 0 { // every program had ended at the epoch restored
		return j.withEnded(host.RanksResult{}), nil
	}
	j.live = len(live)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	rc := host.RanksConfig{
		Module:        j.module,
		ModuleName:    displayName(j.rec.Module),
		Ranks:         live,
		Size:          j.n,
		Args:          j.rec.Args,
		Env:           j.rec.Env,
		Mounts:        mountsFromJSON(j.rec.Mounts),
		Stdin:         cfg.Stdin,
		Stdout:        j.output(0),
		Stderr:        j.output(1),
		Endpoint:      j.ep,
		CacheDir:      cfg.CacheDir,
		Log:           cfg.Log,
		Deterministic: j.rec.Deterministic,
		Seed:          j.rec.Seed,
	}
	if j.share != nil {
		j.share.hook(ctx, cancel, &rc)
	} else if j.store != nil {
		j.checkpointed(ctx, done, &rc)
	} else if cfg.Stop != nil {
		go func() {
			select {
			case <-cfg.Stop:
				cancel()
			case <-done:
			}
		}()
	}
	j.observeRun(&rc)
	res, err := host.RunRanks(ctx, rc)
	j.observeDone(res, err)
	if err != nil {
		return res, err
	}
	if j.store != nil && j.share == nil {
		j.waitRound()
	}
	if j.share != nil {
		res = j.withEnded(res)
	}
	return res, nil
}

// withEnded adds to res, in the order of j.ranks, the ranks whose
// programs had ended at the epoch restored and were not run again, with
// their exit codes: how each rank here ended, so that a share's EXIT
// names them all (the submitter waited for ever for a rank that ended
// before a recovery's epoch).
func (j *jobRun) withEnded(res host.RanksResult) host.RanksResult {
	at := make(map[int]int, len(res.Ranks))
	for i, r := range res.Ranks {
		at[r] = i
	}
	var out host.RanksResult
	for _, r := range j.ranks {
		i, ran := at[r]
		switch {
		case ran:
			out.Ranks, out.Codes, out.Errs = append(out.Ranks, r), append(out.Codes, res.Codes[i]), append(out.Errs, res.Errs[i])
			delete(at, r)
		case j.ended[r]: // j.codes is by rank of the whole job
			out.Ranks, out.Codes, out.Errs = append(out.Ranks, r), append(out.Codes, j.codes[r]), append(out.Errs, nil)
		}
	}
	for i, r := range res.Ranks { // none: every rank run is one of j.ranks
		if _, left := at[r]; left {
			out.Ranks, out.Codes, out.Errs = append(out.Ranks, r), append(out.Codes, res.Codes[i]), append(out.Errs, res.Errs[i])
		}
	}
	return out
}

// checkpointed adds to rc what a job with a state directory does: the
// control socket, periodic checkpoints, a stop after a final checkpoint,
// and the hooks of the rounds.
func (j *jobRun) checkpointed(ctx context.Context, done <-chan struct{}, rc *host.RanksConfig) {
	go func() { // a failing or cancelled job takes no more checkpoints
		select {
		case <-ctx.Done():
			j.abort()
		case <-done:
		}
	}()
	if stopCtl, err := serveControl(j.cfg.StateDir, j.requestCheckpoint); err != nil {
		j.logf("warning: %v", err)
	} else {
		go func() { <-done; stopCtl() }()
	}
	go j.triggers(done)
	if j.cfg.Stop != nil {
		go func() {
			select {
			case <-done:
			case <-j.cfg.Stop:
				j.stop()
			}
		}()
	}
	rc.Journal = j.journal
	rc.Prepare = j.prepare
	rc.OnPause = j.onPause
	rc.OnCheckpointFailed = j.onFailed
	rc.OnExit = j.onExit
}

// endpoint makes the in-process endpoint of a job on this host alone (or
// takes the caller's) and restores the channels of the epoch resumed.
func (j *jobRun) endpoint() error {
	if j.cfg.Endpoint != nil {
		j.ep = j.cfg.Endpoint
		return nil
	}
	var logFull func(int64)
	if j.store != nil {
		// Sender logs past their limit: a checkpoint makes them stable.
		logFull = func(int64) { go j.tick(false) }
	}
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:  "local",
		Route: func(uint32) transport.HostID { return "local" },
		// Without checkpoints nothing needs the sender logs.
		StableOnAck: j.store == nil,
		OnLogFull:   logFull,
		// A rank takes its checkpoint of an epoch before it is given a
		// message stamped with it (job_rounds.go).
		HoldLaterEpochs: j.store != nil,
		Logf:            func(format string, args ...any) { j.logf(format, args...) },
	})
	if err != nil {
		return err
	}
	j.ep, j.ownEp = ep, true
	if j.comm != nil {
		return ep.Restore(j.comm)
	}
	return nil
}

// outputs makes the ranks' line writers to the process's streams, which
// they share; RankOutput's writers take each rank's output as it comes.
func (j *jobRun) outputs() {
	j.outs = make([][2]*rankOut, j.n)
	if j.cfg.RankOutput != nil {
		return
	}
	streams := [2]*jobStream{j.ledger.newStream(0, j.cfg.Stdout), j.ledger.newStream(1, j.cfg.Stderr)}
	// Lines are held back only where ranks share a stream, or are
	// prefixed; a job of one prints its bytes as they come.
	whole := j.n > 1 || j.rec.Prefix
	for _, r := range j.ranks {
		for s := range 2 {
			if streams[s].w != nil {
				j.outs[r][s] = newRankOut(streams[s], j.ledger, r, s, j.rec.Prefix, whole)
			}
		}
	}
}

func (j *jobRun) output(s int) func(int) io.Writer {
	return func(r int) io.Writer {
		if f := j.cfg.RankOutput; f != nil {
			return f(r, byte(s+1))
		}
		if o := j.outs[r][s]; o != nil {
			return o
		}
		return nil
	}
}

// stopped reports whether a job without a state directory was stopped.
func (j *jobRun) stopped() bool {
	if j.cfg.Stop == nil || j.store != nil {
		return false
	}
	select {
	case <-j.cfg.Stop:
		return true
	default:
		return false
	}
}

// finish records that the job ended with code.
func (j *jobRun) finish(code int) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Finished, j.rec.Exit = true, code
	j.recMu.Lock()
	defer j.recMu.Unlock()
	j.recFinal = true // a commit's write of the record after this one would undo it
	if err := writeRecord(j.cfg.StateDir, j.rec); err != nil {
		// The job's exit code stands.
		j.logf("warning: the %s ended but %s does not say so: %v", j.what(), j.cfg.StateDir, err)
	}
	return code, nil
}
