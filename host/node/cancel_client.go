package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// CancelJob asks every host in addrs, at once, to stop job id now, and
// returns each host's status of the job once its workers have stopped. A
// host that has no such job, or cannot be reached, gets an error in its
// place.
func CancelJob(ctx context.Context, c Client, addrs []string, id string) ([]JobStatus, []error, error) {
	if id == "" || len(id) > 64 {
		return nil, nil, fmt.Errorf("node: bad job ID %q (librahost status lists the jobs)", id)
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	timeout := c.dialTimeout()
	sts, errs := eachHost(addrs, func(a string) (JobStatus, error) { return cancelOne(ctx, a, timeout, tc, id) })
	return sts, errs, nil
}

func cancelOne(ctx context.Context, addr string, timeout time.Duration, tc *tls.Config, id string) (JobStatus, error) {
	h, err := dialHost(ctx, addr, tc, timeout)
	if err != nil {
		return JobStatus{}, err
	}
	defer h.conn.CloseWithError(0, "")
	// The host answers once the job's workers have stopped, within
	// cancelWait.
	ctx, cancel := context.WithTimeout(ctx, timeout+cancelWait)
	defer cancel()
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return JobStatus{}, hostError(addr, err)
	}
	if err := writeJSON(str, msgCancel, cancelMsg{Job: id}); err != nil {
		return JobStatus{}, hostError(addr, err)
	}
	str.Close()
	context.AfterFunc(ctx, func() { str.CancelRead(1) })
	t, b, err := readMsg(str)
	switch {
	case err != nil:
		return JobStatus{}, hostError(addr, err)
	case t == msgError:
		var e errorMsg
		decodeJSON(t, b, &e)
		return JobStatus{}, errors.New(e.Error)
	case t != msgCancelled:
		return JobStatus{}, fmt.Errorf("%w: host %s sent %s", ErrProtocol, addr, t)
	}
	var st JobStatus
	if err := decodeJSON(t, b, &st); err != nil {
		return JobStatus{}, err
	}
	if st.State == "" {
		return JobStatus{}, fmt.Errorf("%w %s on host %s at %s", ErrNoJob, id, h.id, addr)
	}
	return st, nil
}
