package node

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
)

// A job with checkpoints that stopped with its committed epochs kept
// (its coordinator's host lost) is continued by `librahost submit
// --resume` (submit_resume.go). Each host keeps in the job's directory
// what that needs besides the checkpoints and commit records:
//
//	job.json      the job as first submitted (its PREPARE, without the module)
//	module.wasm   the module
//	inc           the newest incarnation the job ran as here
//	printed.json  by rank and stream, the bytes its submitter printed
//	              (PRINTED, sent by a submitter whose job stopped so)
//
// HELD?, first on a stream, asks a host what it holds of a job: HOLDS
// answers with the job, its commit records here and the checkpoint of
// each rank and epoch held here (its own or a replica), but those of an
// epoch a check here refused (driver.RefusedFile: a damaged chunk found
// by a lazy restore or at a recovery), so that the resume falls back. A PREPARE with Resume starts the job again on the hosts given:
// each host opens the job's store as it was, and the coordinator, on the
// host the submitter names, rolls every host back to the epoch as a new
// incarnation (ckpt.EpochCoordinator.Resume).

const (
	specFile    = "job.json"
	moduleFile  = "module.wasm"
	incFile     = "inc"
	printedFile = "printed.json"
)

// resumeMsg is what a PREPARE that resumes a job adds.
type resumeMsg struct {
	Epoch       uint64          `json:"epoch"`       // the committed epoch resumed from
	Inc         uint64          `json:"inc"`         // the newest incarnation any host ran
	Next        uint64          `json:"next"`        // the first epoch the coordinator begins, past any held
	Hosts       []string        `json:"hosts"`       // the job's hosts by ckpt.HostID, as first submitted
	Live        []bool          `json:"live"`        // by ckpt.HostID: the hosts given
	Coordinator ckpt.HostID     `json:"coordinator"` // the host that runs the coordinator now
	Place       []ckpt.HostID   `json:"place"`       // the epoch's placement (its commit record's)
	Holders     [][]ckpt.HostID `json:"holders"`     // by rank: the hosts given that hold its checkpoint of Epoch
}

func (r *resumeMsg) check(n int) error {
	switch {
	case r.Epoch == 0 || r.Next <= r.Epoch:
		return fmt.Errorf("%w: resume from epoch %d, next %d", ErrProtocol, r.Epoch, r.Next)
	case len(r.Hosts) == 0 || len(r.Live) != len(r.Hosts):
		return fmt.Errorf("%w: resume over %d hosts, %d told live or not", ErrProtocol, len(r.Hosts), len(r.Live))
	case r.Coordinator < 0 || int(r.Coordinator) >= len(r.Hosts) || !r.Live[r.Coordinator]:
		return fmt.Errorf("%w: resume with the coordinator on host h%d", ErrProtocol, r.Coordinator)
	case len(r.Place) != n || len(r.Holders) != n:
		return fmt.Errorf("%w: resume placement of %d ranks, holders of %d, for %d workers", ErrProtocol, len(r.Place), len(r.Holders), n)
	}
	return nil
}

// heldMsg, first on a stream, asks a host what it holds of a job.
type heldMsg struct {
	Job string `json:"job"`
}

// holdsMsg answers HELD?.
type holdsMsg struct {
	// NotHere: the host keeps nothing of the job; Error: it cannot be
	// resumed here now (Running: it still runs).
	NotHere string               `json:"not_here,omitempty"`
	Running bool                 `json:"running,omitempty"`
	Error   string               `json:"error,omitempty"`
	Spec    *prepareMsg          `json:"spec,omitempty"`
	Module  string               `json:"module,omitempty"` // SHA-256 of the module kept, hex
	Inc     uint64               `json:"inc,omitempty"`
	Records []*ckpt.CommitRecord `json:"records,omitempty"`
	Held    []heldCkpt           `json:"held,omitempty"`
	Printed []printedOff         `json:"printed,omitempty"`
	// PrintedKept says the host keeps what the submitter printed (which
	// may be nothing: Printed is then empty).
	PrintedKept bool `json:"printed_kept,omitempty"`
}

// heldCkpt is a rank's checkpoint of an epoch held on a host (its own
// or a replica).
type heldCkpt struct {
	Rank  int    `json:"rank"`
	Epoch uint64 `json:"epoch"`
}

// printedOff is where a submitter's printing of a rank's stream ended.
type printedOff struct {
	Rank   int    `json:"rank"`
	Stream byte   `json:"stream"`
	Off    uint64 `json:"off"`
}

// printedMsg, first on a stream, gives a host what the submitter of a
// job that stopped with its epochs kept printed of it; KEPT answers
// (Error if it could not be kept).
type printedMsg struct {
	Job     string       `json:"job"`
	Printed []printedOff `json:"printed"`
}

type keptMsg struct {
	Error string `json:"error,omitempty"`
}

// saveSpec keeps, in a new job's directory, what a resume needs: the job
// and its module.
func saveSpec(dir string, p prepareMsg, module []byte) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, moduleFile), module); err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, specFile), b)
}

// loadSpec reads what saveSpec kept.
func loadSpec(dir string) (prepareMsg, []byte, error) {
	var p prepareMsg
	b, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return p, nil, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, nil, fmt.Errorf("%s: %v", filepath.Join(dir, specFile), err)
	}
	if err := p.check(); err != nil {
		return p, nil, fmt.Errorf("%s: %v", filepath.Join(dir, specFile), err)
	}
	module, err := os.ReadFile(filepath.Join(dir, moduleFile))
	return p, module, err
}

// noteInc records the newest incarnation job j runs as here.
func noteInc(j *job, inc uint64) {
	j.mu.Lock()
	dir := j.dir
	j.mu.Unlock()
	if dir != "" {
		writeFileSync(filepath.Join(dir, incFile), []byte(strconv.FormatUint(inc, 10)))
	}
}

// serveHeld answers HELD?.
func (d *Daemon) serveHeld(str io.Writer, peer string, body []byte) {
	var q heldMsg
	if err := decodeJSON(msgHeld, body, &q); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	writeJSON(str, msgHolds, d.holds(q.Job))
}

// holds is what this host holds of job id.
func (d *Daemon) holds(id string) holdsMsg {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, `/\.`) {
		return holdsMsg{NotHere: fmt.Sprintf("bad job ID %q", id)}
	}
	if j := d.findJob(id); j != nil {
		select {
		case <-j.done:
		default:
			return holdsMsg{Running: true, Error: fmt.Sprintf("job %s still runs on host %s (wait until it stops, or cancel it)", id, d.cfg.Name)}
		}
	}
	dir := jobDir(d.cfg.DataDir, id)
	spec, module, err := loadSpec(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && d.recorded(id):
		return holdsMsg{NotHere: fmt.Sprintf("host %s keeps no checkpoints of job %s (submitted without --checkpoint-every?)", d.cfg.Name, id)}
	case errors.Is(err, os.ErrNotExist):
		return holdsMsg{NotHere: fmt.Sprintf("host %s keeps nothing of job %s", d.cfg.Name, id)}
	case err != nil:
		return holdsMsg{Error: fmt.Sprintf("host %s: job %s: %v", d.cfg.Name, id, err)}
	}
	sum := sha256.Sum256(module)
	h := holdsMsg{Spec: &spec, Module: hex.EncodeToString(sum[:])}
	if b, err := os.ReadFile(filepath.Join(dir, incFile)); err == nil {
		h.Inc, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(filepath.Join(dir, printedFile)); err == nil {
		// A damaged one: printed from the epoch.
		h.PrintedKept = json.Unmarshal(b, &h.Printed) == nil
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "commit-") || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		var m ckpt.Msg
		if err == nil {
			m, err = ckpt.DecodeMsg(b)
		}
		if err != nil || m.Record == nil {
			d.logf("job %s: %s cannot be read (%v): not offered to resume", id, e.Name(), err)
			continue
		}
		h.Records = append(h.Records, m.Record)
	}
	slices.SortFunc(h.Records, func(a, b *ckpt.CommitRecord) int { return cmp.Compare(a.Epoch, b.Epoch) })
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(dir, "ckpt.db")})
	if err != nil {
		return holdsMsg{Error: fmt.Sprintf("host %s: job %s: %v", d.cfg.Name, id, err)}
	}
	defer store.Close()
	keys, err := store.Keys()
	if err != nil {
		return holdsMsg{Error: fmt.Sprintf("host %s: job %s: %v", d.cfg.Name, id, err)}
	}
	refused := driver.ReadRefused(dir)
	for _, k := range keys {
		if k.Job != shareKeyJob {
			continue
		}
		infos, _ := store.Epochs(k)
		for _, in := range infos {
			if in.Created.IsZero() {
				continue // its manifest does not decode
			}
			if refused[in.Epoch] {
				continue // a check here found it damaged
			}
			h.Held = append(h.Held, heldCkpt{Rank: int(k.Worker), Epoch: in.Epoch})
		}
	}
	return h
}

// servePrinted keeps what a job's submitter printed of it (PRINTED).
func (d *Daemon) servePrinted(str io.Writer, peer string, body []byte) {
	var p printedMsg
	if err := decodeJSON(msgPrinted, body, &p); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	dir := jobDir(d.cfg.DataDir, p.Job)
	if p.Job == "" || len(p.Job) > 64 || strings.ContainsAny(p.Job, `/\.`) {
		writeJSON(str, msgKept, keptMsg{Error: fmt.Sprintf("bad job ID %q", p.Job)})
		return
	}
	if _, err := os.Stat(filepath.Join(dir, specFile)); err != nil {
		writeJSON(str, msgKept, keptMsg{Error: fmt.Sprintf("host %s keeps nothing of job %s", d.cfg.Name, p.Job)})
		return
	}
	b, _ := json.Marshal(p.Printed)
	if err := writeFileSync(filepath.Join(dir, printedFile), b); err != nil {
		writeJSON(str, msgKept, keptMsg{Error: fmt.Sprintf("host %s: %v", d.cfg.Name, err)})
		return
	}
	d.logf("job %s: what its submitter printed is kept for a resume", p.Job)
	writeJSON(str, msgKept, keptMsg{})
}

// addResumed registers a job resumed here in the place of its ended
// part; false if the job still runs here.
func (d *Daemon) addResumed(j *job) bool {
	d.mu.Lock()
	if _, running := d.jobs[j.id]; running {
		d.mu.Unlock()
		return false
	}
	d.ended = slices.DeleteFunc(d.ended, func(e *job) bool { return e.id == j.id })
	d.jobs[j.id] = j
	d.mu.Unlock()
	d.recordStart(j)
	return true
}

// resumeLive lists the hosts given to a resume (every host of the job
// then runs a share, with ranks or not).
func resumeLive(p prepareMsg) []string {
	if p.Resume == nil {
		return nil
	}
	var out []string
	for h, l := range p.Resume.Live {
		if l && h < len(p.Resume.Hosts) {
			out = append(out, p.Resume.Hosts[h])
		}
	}
	return out
}

// resumeModule checks a resuming PREPARE and returns the module this host
// kept of the job.
func (d *Daemon) resumeModule(p prepareMsg) ([]byte, error) {
	if err := p.Resume.check(p.N); err != nil {
		return nil, err
	}
	if p.CheckpointEvery <= 0 {
		return nil, fmt.Errorf("%w: a resumed job without checkpoints", ErrProtocol)
	}
	_, module, err := loadSpec(jobDir(d.cfg.DataDir, p.Job))
	if err != nil {
		return nil, fmt.Errorf("host %s cannot resume job %s: %v", d.cfg.Name, p.Job, err)
	}
	return module, nil
}
