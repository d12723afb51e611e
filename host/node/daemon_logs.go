package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/host/jobrec"
)

// logsMsg, first on a stream of its own, asks a host for the output it
// keeps of a job (`librahost logs`, `attach`): from its start, or from
// now, and with Follow until the job ends there. The host answers LOGGED
// (the job's status here, or none: no such job), then OUTPUT for each
// piece kept, then LOGGED again with the job's status at the end of the
// output read.
type logsMsg struct {
	Job     string `json:"job"`
	Follow  bool   `json:"follow,omitempty"`
	FromNow bool   `json:"from_now,omitempty"`
}

// loggedMsg is a host's status of a job whose output it sends.
type loggedMsg struct {
	// Status is nil if the host has no job of the ID.
	Status    *JobStatus `json:"status,omitempty"`
	Placement []string   `json:"placement,omitempty"` // the host of each rank
	// Gone says why the host keeps no output of the job (then no OUTPUT
	// and no second LOGGED follow).
	Gone string `json:"gone,omitempty"`
	// MaxOutput is the bound of the output the host keeps of a job.
	MaxOutput int64 `json:"max_output,omitempty"`
}

// jobLogged is the status of job id here, running or recorded; nil
// Status: no such job.
func (d *Daemon) jobLogged(id string) loggedMsg {
	m := loggedMsg{MaxOutput: d.recs.Config().MaxOutput}
	if j := d.findJob(id); j != nil {
		st := j.status()
		m.Status, m.Placement = &st, j.placement
		return m
	}
	if r, err := d.recs.Get(id); err == nil {
		st := statusOfRecord(r)
		m.Status, m.Placement = &st, r.Placement
	}
	return m
}

// serveLogs answers a LOGS stream.
func (d *Daemon) serveLogs(ctx context.Context, str *quic.Stream, peer string, body []byte) {
	var m logsMsg
	if err := decodeJSON(msgLogs, body, &m); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	if j := d.findJob(m.Job); j != nil && j.logged != nil {
		// Listed before its output log is started: without it, the
		// record of an earlier run of the job (or none) would be read
		// as this one's, and the stream end at once.
		select {
		case <-j.logged:
		default:
			if d.testLogsWait != nil {
				d.testLogsWait()
			}
			select {
			case <-j.logged:
			case <-ctx.Done():
				return
			case <-str.Context().Done():
				return
			}
		}
	}
	head := d.jobLogged(m.Job)
	if head.Status == nil {
		if d.testLogsUnknown != nil {
			d.testLogsUnknown()
		}
		writeJSON(str, msgLogged, head)
		return
	}
	l, err := d.recs.Output(m.Job)
	if err != nil {
		head.Gone = "its output is gone"
		if !errors.Is(err, jobrec.ErrOutputGone) {
			head.Gone = err.Error()
		}
		writeJSON(str, msgLogged, head)
		return
	}
	if err := writeJSON(str, msgLogged, head); err != nil {
		return
	}
	// Until the job ends here, or the client goes (its connection, or
	// ours, closes).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(str.Context(), cancel)
	defer stop()
	r := l.NewReader(m.FromNow)
	defer r.Close()
	for {
		c, err := r.Next(ctx, m.Follow)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				d.logf("job %s: output for %s: %v", m.Job, peer, err)
				writeJSON(str, msgError, errorMsg{Error: fmt.Sprintf("host %s: %v", d.cfg.Name, err)})
			}
			return
		}
		if err := writeMsg(str, msgOutput, encodeOutput(outputMsg{c.Rank, c.Stream, c.Off, c.P})); err != nil {
			return
		}
	}
	writeJSON(str, msgLogged, d.jobLogged(m.Job))
}
