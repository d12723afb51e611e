package host

import (
	"fmt"
	"strconv"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// listJobEpochs lists a job's committed epochs: one line each, with the
// sizes summed over its workers.
func listJobEpochs(st *ckpt.Store, rec *runRecord) ([]CheckpointInfo, error) {
	commits, err := st.Commits(jobName)
	if err != nil {
		return nil, err
	}
	var out []CheckpointInfo
	for _, c := range commits {
		ci := CheckpointInfo{Epoch: c.Epoch, Created: c.Created, Workers: int(c.Workers), ModuleDigest: rec.Digest}
		for r := range int(c.Workers) {
			m, err := st.Manifest(ckpt.Key{Job: jobName, Worker: uint32(r)}, c.Epoch)
			if err != nil {
				continue
			}
			ci.MemSize += m.MemSize
			ci.StoredBytes += m.StoredBytes
			ci.NewBytes += uint64(m.Stats.BytesStored)
			ci.ModuleDigest = digestHex(m.Binding.ModuleDigest)
		}
		out = append(out, ci)
	}
	return out, nil
}

// inspectJobEpoch describes one committed epoch of a job (0: the newest),
// with a line per worker.
func inspectJobEpoch(st *ckpt.Store, rec *runRecord, stateDir string, epoch uint64) (*Inspection, error) {
	commits, err := st.Commits(jobName)
	if err != nil {
		return nil, err
	}
	var c *ckpt.Commit
	for i := range commits {
		if epoch == 0 || commits[i].Epoch == epoch {
			c = &commits[i]
		}
	}
	if c == nil {
		if epoch == 0 {
			return nil, fmt.Errorf("%w: state dir %s holds no committed job epoch", ErrNoCheckpoint, stateDir)
		}
		return nil, fmt.Errorf("%w: epoch %d of the job in %s was not committed", ErrNoCheckpoint, epoch, stateDir)
	}
	d := &Inspection{}
	add := func(k, v string) { d.Fields = append(d.Fields, [2]string{k, v}) }
	add("epoch", strconv.FormatUint(c.Epoch, 10))
	add("committed", c.Created.Local().Format(time.RFC3339))
	add("workers", strconv.Itoa(int(c.Workers)))
	add("module", rec.Module)
	for r := range int(c.Workers) {
		name := "rank " + strconv.Itoa(r)
		m, err := st.Manifest(ckpt.Key{Job: jobName, Worker: uint32(r)}, c.Epoch)
		if err != nil {
			add(name, err.Error())
			continue
		}
		verify := "ok"
		if err := st.Verify(m); err != nil {
			verify = err.Error()
		}
		state := "running"
		if rc, cs, err := decodeRankCheckpoint(m.Host); err != nil {
			state = err.Error()
		} else if rc.Ended {
			state = fmt.Sprintf("ended (exit code %d)", rc.Exit)
		} else {
			state = fmt.Sprintf("running, %d messages in its inbox", len(cs.Inbox))
		}
		add(name, fmt.Sprintf("%s; memory %s, stored %s, written %s, pause %s; verify %s", state,
			FormatBytes(m.MemSize), FormatBytes(m.StoredBytes), FormatBytes(uint64(m.Stats.BytesStored)), m.Stats.PauseDur, verify))
	}
	return d, nil
}
