package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/host/progress"
)

// A detached job (`librahost submit --detach`) is submitted by the first
// of its hosts on the submitter's behalf: DETACH hands that host the job
// (the hosts' addresses, as the submitter gave them, and the module); the
// host runs Submit itself, with its own certificate, and answers
// DETACHED with the job's ID once every host has started it, or ERROR.
// The submitter then leaves; the job's output is kept by its hosts
// (logs, attach) and it ends as any job does, or when that host's daemon
// stops (which cancels it).

// detachMsg: the job to submit from the host: its hosts, and the job as
// PREPARE describes it (no ID, no placement yet).
type detachMsg struct {
	Hosts []string `json:"hosts"` // control addresses, host:port
	prepareMsg
}

type detachedMsg struct {
	Job string `json:"job"`
}

func decodeDetach(body []byte) (detachMsg, []byte, error) {
	var m detachMsg
	module, err := decodeWithModule(msgDetach, body, &m)
	if err != nil {
		return m, nil, err
	}
	if len(m.Hosts) == 0 || m.N < 1 || m.N > maxWorkers {
		return m, nil, fmt.Errorf("%w: DETACH of %d workers on %d hosts", ErrProtocol, m.N, len(m.Hosts))
	}
	return m, module, nil
}

// SubmitDetached hands the job of cfg to its first host, which submits
// it from there, and returns the job's ID once every host has started it.
// cfg's output writers and Stop are not used: the job's output is kept by
// its hosts (Logs).
func SubmitDetached(ctx context.Context, cfg SubmitConfig) (string, error) {
	if len(cfg.Hosts) == 0 {
		return "", errors.New("node: no hosts to submit to")
	}
	body, err := encodeWithModule(detachMsg{Hosts: cfg.Hosts, prepareMsg: prepareMsg{N: cfg.N, Args: cfg.Args, Env: cfg.Env, Module: cfg.ModuleName,
		FailureTimeout: cfg.FailureTimeout, CheckpointEvery: cfg.CheckpointEvery, Replicas: cfg.Replicas,
		CheckpointOverhead: cfg.CheckpointOverhead, Mounts: mountsToMsg(cfg.Mounts)}}, cfg.Module)
	if err != nil {
		return "", err
	}
	hcs, err := cfg.dialAll(ctx, cfg.Hosts[:1])
	if err != nil {
		return "", err
	}
	h := hcs[0]
	defer closeAll(hcs)
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return "", hostError(h.addr, err)
	}
	bar := progress.New(cfg.Progress, fmt.Sprintf("sending %s to host %s", cfg.ModuleName, h.id), int64(len(body)))
	err = writeMsg(bar.Count(str), msgDetach, body)
	bar.Done()
	if err != nil {
		return "", hostError(h.addr, err)
	}
	str.Close()
	t, b, err := readMsg(str)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: host %s: %v", ErrHostLost, h.id, describeStreamError(err))
	case t == msgError:
		var e errorMsg
		decodeJSON(t, b, &e)
		return "", errors.New(e.Error)
	case t != msgDetached:
		return "", fmt.Errorf("%w: host %s sent %s instead of DETACHED", ErrProtocol, h.id, t)
	}
	var m detachedMsg
	if err := decodeJSON(t, b, &m); err != nil {
		return "", err
	}
	return m.Job, nil
}

// serveDetach submits a detached job from this host: it answers once
// every host has started the job, and runs the submission until the job
// ends, or the daemon stops (which cancels the job).
func (d *Daemon) serveDetach(ctx context.Context, str *quic.Stream, peer string, body []byte) {
	m, module, err := decodeDetach(body)
	if err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	started := make(chan string, 1)
	cfg := SubmitConfig{
		Client: Client{ClusterDir: d.cfg.ClusterDir, As: d.cfg.Name},
		Hosts:  m.Hosts, N: m.N, Module: module, ModuleName: m.Module, Args: m.Args, Env: m.Env,
		Stdout: io.Discard, Stderr: io.Discard, Stop: ctx.Done(),
		FailureTimeout: m.FailureTimeout, CheckpointEvery: m.CheckpointEvery, Replicas: m.Replicas,
		CheckpointOverhead: m.CheckpointOverhead,
		Mounts:             mountsFromMsg(m.Mounts),
		Started:            func(job string) { started <- job },
		detached:           true,
	}
	type result struct {
		code int
		err  error
	}
	ended := make(chan result, 1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		code, err := Submit(context.Background(), cfg)
		ended <- result{code, err}
	}()
	select {
	case job := <-started:
		d.logf("job %s: submitted from here for %s (detached)", job, peer)
		writeJSON(str, msgDetached, detachedMsg{Job: job})
		str.Close()
		r := <-ended
		if r.err != nil {
			d.logf("job %s (detached): exit %d: %v", job, r.code, r.err)
		} else {
			d.logf("job %s (detached): exit %d", job, r.code)
		}
	case r := <-ended:
		select {
		case job := <-started: // and ended at once
			writeJSON(str, msgDetached, detachedMsg{Job: job})
			d.logf("job %s (detached): exit %d", job, r.code)
		default:
			if r.err == nil {
				r.err = fmt.Errorf("node: the job ended (exit %d) before it started", r.code)
			}
			writeJSON(str, msgError, errorMsg{Error: r.err.Error()})
		}
	}
}
