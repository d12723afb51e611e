package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	driver "github.com/librahost/librahost/host/job"
)

// MigrateJob asks the host of addrs that runs job id's coordinator to
// move rank to the host named to, and returns how it went once it ended.
func MigrateJob(ctx context.Context, c Client, addrs []string, id string, rank int, to string) (driver.MigrateResult, error) {
	a, err := askCoordinator(ctx, c, addrs, migrateMsg{Job: id, Op: opMigrate, Rank: rank, Host: to})
	return driver.MigrateResult{Downtime: a.Downtime, Total: a.Total, Sent: a.Sent, Size: a.Size, Rounds: a.Rounds}, err
}

// WatchMigration calls f with the progress of rank's migration as the
// host of addrs it leaves says it, until the migration ends there or ctx
// ends.
func WatchMigration(ctx context.Context, c Client, addrs []string, id string, rank int, f func(driver.MigrateProgress)) {
	tc, err := c.tlsConfig()
	if err != nil {
		return
	}
	for _, addr := range addrs {
		go func() {
			h, err := dialHost(ctx, addr, tc, c.dialTimeout())
			if err != nil {
				return
			}
			defer h.conn.CloseWithError(0, "")
			str, err := h.conn.OpenStreamSync(ctx)
			if err != nil || writeJSON(str, msgMigrate, migrateMsg{Job: id, Op: opWatch, Rank: rank}) != nil {
				return
			}
			str.Close()
			context.AfterFunc(ctx, func() { str.CancelRead(1) })
			for {
				t, b, err := readMsg(str)
				var a migratedMsg
				if err != nil || t != msgMigrated || decodeJSON(t, b, &a) != nil || !a.Watching {
					return
				}
				f(driver.MigrateProgress{Rounds: a.Rounds, Sent: a.Sent, Size: a.Size, DirtyRate: a.DirtyRate})
			}
		}()
	}
}

// DrainJob moves every rank of job id off the host named h and keeps
// it from taking the job's ranks (on), or lets it take them again.
func DrainJob(ctx context.Context, c Client, addrs []string, id, h string, on bool) error {
	op := opUndrain
	if on {
		op = opDrain
	}
	_, err := askCoordinator(ctx, c, addrs, migrateMsg{Job: id, Op: op, Host: h})
	return err
}

// HoldHost makes the host at addr take no new jobs (on), or take them
// again.
func HoldHost(ctx context.Context, c Client, addr string, on bool) error {
	op := opRelease
	if on {
		op = opHold
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	a, err := migrateOne(ctx, addr, c.dialTimeout(), tc, migrateMsg{Op: op})
	if err == nil && a.Error != "" {
		err = errors.New(a.Error)
	}
	return err
}

// askCoordinator sends m to each host of addrs until the one that runs
// the job's coordinator answers.
func askCoordinator(ctx context.Context, c Client, addrs []string, m migrateMsg) (migratedMsg, error) {
	if m.Job == "" || len(m.Job) > 64 {
		return migratedMsg{}, fmt.Errorf("node: bad job ID %q (librahost status lists the jobs)", m.Job)
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return migratedMsg{}, err
	}
	var notHere []string
	for _, addr := range addrs {
		a, err := migrateOne(ctx, addr, c.dialTimeout(), tc, m)
		switch {
		case err != nil:
			return a, err
		case a.NotHere != "":
			notHere = append(notHere, a.NotHere)
		case a.Error != "":
			return a, errors.New(a.Error)
		default:
			return a, nil
		}
	}
	return migratedMsg{}, fmt.Errorf("%w: %s", ErrNoJob, strings.Join(notHere, "; "))
}

func migrateOne(ctx context.Context, addr string, timeout time.Duration, tc *tls.Config, m migrateMsg) (migratedMsg, error) {
	var a migratedMsg
	err := request(ctx, addr, timeout, tc, migrateWait, msgMigrate, m, msgMigrated, &a)
	return a, err
}

// request sends one request of type t to the host at addr and decodes
// its answer, of type want, into ans; the host may take wait to answer.
// An ERROR answer is returned as an error.
func request(ctx context.Context, addr string, timeout time.Duration, tc *tls.Config, wait time.Duration, t msgType, req any, want msgType, ans any) error {
	h, err := dialHost(ctx, addr, tc, timeout)
	if err != nil {
		return err
	}
	defer h.conn.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(ctx, timeout+wait)
	defer cancel()
	str, err := h.conn.OpenStreamSync(ctx)
	if err != nil {
		return hostError(addr, err)
	}
	if err := writeJSON(str, t, req); err != nil {
		return hostError(addr, err)
	}
	str.Close()
	context.AfterFunc(ctx, func() { str.CancelRead(1) })
	got, b, err := readMsg(str)
	switch {
	case err != nil:
		return hostError(addr, err)
	case got == msgError:
		var e errorMsg
		decodeJSON(got, b, &e)
		return errors.New(e.Error)
	case got != want:
		return fmt.Errorf("%w: host %s sent %s", ErrProtocol, addr, got)
	}
	return decodeJSON(got, b, ans)
}
