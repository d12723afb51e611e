package job

import (
	"fmt"
	"strconv"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
)

// inspectJobEpoch describes one committed epoch of a job, with a line per
// worker.
func inspectJobEpoch(st *ckpt.Store, rec *runRecord, c ckpt.Commit) *Inspection {
	d := &Inspection{}
	add := func(k, v string) { d.Fields = append(d.Fields, [2]string{k, v}) }
	add("epoch", strconv.FormatUint(c.Epoch, 10))
	add("committed", c.Created.Local().Format(time.RFC3339))
	add("workers", strconv.Itoa(int(c.Workers)))
	add("module", rec.Module)
	for r := range int(c.Workers) {
		name := "rank " + strconv.Itoa(r)
		m, err := st.Manifest(ckpt.Key{Job: rec.Job, Worker: uint32(r)}, c.Epoch)
		if err != nil {
			add(name, err.Error())
			continue
		}
		verify := "ok"
		if err := st.Verify(m); err != nil {
			verify = err.Error()
		}
		state := "running"
		if rc, cs, err := decodeRankCheckpoint(m.Host, r); err != nil {
			state = err.Error()
		} else if rc.Ended {
			state = fmt.Sprintf("ended (exit code %d)", rc.Exit)
		} else {
			state = fmt.Sprintf("running, %d messages in its inbox", len(cs.Inbox))
		}
		add(name, fmt.Sprintf("%s; memory %s, stored %s, written %s, pause %s; verify %s", state,
			host.FormatBytes(m.MemSize), host.FormatBytes(m.StoredBytes), host.FormatBytes(uint64(m.Stats.BytesStored)), m.Stats.PauseDur, verify))
	}
	return d
}
