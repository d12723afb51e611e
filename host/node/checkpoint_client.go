package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"
)

// checkpointWait bounds how long a checkpoint asked for may take to
// commit.
const checkpointWait = 10 * time.Minute

// CheckpointJob asks the host of addrs that runs job id's coordinator for
// a checkpoint at once, and returns its epoch once committed.
func CheckpointJob(ctx context.Context, c Client, addrs []string, id string) (uint64, error) {
	if id == "" || len(id) > 64 {
		return 0, fmt.Errorf("node: bad job ID %q (librahost status lists the jobs)", id)
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return 0, err
	}
	var notHere []string
	for _, a := range addrs {
		e, miss, err := checkpointOne(ctx, a, c.dialTimeout(), tc, id)
		switch {
		case err != nil:
			return e, err
		case miss != "":
			notHere = append(notHere, miss)
		default:
			return e, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", ErrNoJob, strings.Join(notHere, "; "))
}

func checkpointOne(ctx context.Context, addr string, timeout time.Duration, tc *tls.Config, id string) (uint64, string, error) {
	var r checkpointedMsg
	if err := request(ctx, addr, timeout, tc, checkpointWait, msgCheckpoint, checkpointMsg{Job: id}, msgCheckpointed, &r); err != nil {
		return 0, "", err
	}
	if r.Error != "" {
		return r.Epoch, "", fmt.Errorf("node: checkpoint %d of job %s: %s", r.Epoch, id, r.Error)
	}
	return r.Epoch, r.NotHere, nil
}
