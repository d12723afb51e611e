package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/replica"
)

// Migrations and drains (`librahost migrate`, `drain`, `undrain`): the
// command asks the host that runs the job's coordinator (MIGRATE), which
// answers once the move or the drain ended (MIGRATED). A rank's state
// goes from its source to its target on a replica stream whose header's
// first byte carries migrationFlag: HANDOVER (the rank, the source's
// read-only inputs) first, which the target answers with TAKEN — or a
// one-line refusal if its own inputs hash otherwise — then host/replica's
// frames, into the job's store there under the rank's migration key.
//
// A drained host takes no new jobs (PREPARE is refused) until undrained;
// each job's coordinator keeps it from taking ranks of that job.

// migrationFlag marks a replica stream that carries a rank's migration
// state (job IDs are at most 64 bytes).
const migrationFlag = 0x80

// stageWait bounds how long a migration's target waits, before it takes
// the next round, for the round before to be written into the worker it
// makes ahead.
const stageWait = 2 * time.Second

// migrateWait bounds how long a migration or drain asked for may take.
const migrateWait = 30 * time.Minute

// migrateMsg asks for a migration, a drain or an undrain of a job's host.
type migrateMsg struct {
	Job  string `json:"job"`
	Op   string `json:"op"` // "migrate", "drain", "undrain"
	Rank int    `json:"rank,omitempty"`
	Host string `json:"host"` // migrate: the target; drain, undrain: the host
	// Stopped (arrived): when the rank stopped at its source, unix ns.
	Stopped int64 `json:"stopped,omitempty"`
}

// migratedMsg is how it ended, or (Watching) how far it has come.
type migratedMsg struct {
	Watching  bool          `json:"watching,omitempty"`
	Rounds    int           `json:"rounds,omitempty"`
	DirtyRate float64       `json:"dirty_rate,omitempty"`
	NotHere   string        `json:"not_here,omitempty"`
	Error     string        `json:"error,omitempty"`
	Downtime  time.Duration `json:"downtime,omitempty"`
	Total     time.Duration `json:"total,omitempty"`
	Sent      int64         `json:"sent,omitempty"`
	Size      int64         `json:"size,omitempty"`
}

// handoverMsg opens a migration stream.
type handoverMsg struct {
	Rank   int      `json:"rank"`
	Base   uint64   `json:"base,omitempty"` // an epoch of the rank's migration key the target holds; 0: a new migration
	Inputs []string `json:"inputs"`         // GUEST=HASH of each read-only mount at the source
	// Final: the rank's last state follows in one FINAL (job.FinalState),
	// for the worker made ahead; the target answers TAKEN once it is
	// written there. Its rounds checked the inputs.
	Final bool `json:"final,omitempty"`
	// Cancel: the migration is off; the target drops what it holds of it
	// and answers TAKEN.
	Cancel bool `json:"cancel,omitempty"`
}

type takenMsg struct {
	Error string `json:"error,omitempty"`
}

// hostOp is a drain or undrain of the host itself: it takes no new jobs.
const (
	opMigrate   = "migrate"
	opDrain     = "drain"
	opUndrain   = "undrain"
	opWatch     = "watch"   // the source of a rank's migration says how far it came
	opArrived   = "arrived" // its target says how long it was stopped, once it runs there
	opHold      = "hold"    // the host asked takes no new jobs
	opRelease   = "release" // it takes them again
	drainedHint = "librahost undrain"
)

// mover is what a job's share needs to move its ranks (the files a rank
// wrote under a read-write mount go with its last state).
func (d *Daemon) mover(hosts []string, ms []mountMsg) *driver.Mover {
	return &driver.Mover{Hosts: hosts, Inputs: func() ([]string, error) { return inputHashes(ms) }}
}

// inputHashes hashes the read-only mounts here, as GUEST=HASH.
func inputHashes(ms []mountMsg) ([]string, error) {
	var out []string
	for _, m := range ms {
		if !m.ReadOnly {
			continue
		}
		abs, err := filepath.Abs(m.Host)
		if err != nil {
			return nil, err
		}
		h, err := hashTree(abs)
		if err != nil {
			return nil, fmt.Errorf("--dir %s: %v", m, err)
		}
		out = append(out, m.Guest+"="+h)
	}
	return out, nil
}

// migrateJob answers MIGRATE: a drain or undrain of this host itself, or
// a job's migration, drain or undrain if its coordinator runs here.
func (d *Daemon) migrateJob(str io.Writer, peer string, body []byte) {
	var m migrateMsg
	if err := decodeJSON(msgMigrate, body, &m); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	switch m.Op {
	case opHold, opRelease:
		var ans migratedMsg
		if err := d.setDrained(m.Op == opHold); err != nil {
			ans.Error = err.Error()
		} else {
			d.logf("%s by %s: this host takes new jobs: %v", map[string]string{opHold: "drained", opRelease: "undrained"}[m.Op], peer, m.Op == opRelease)
		}
		writeJSON(str, msgMigrated, ans)
		return
	}
	switch m.Op {
	case opWatch:
		d.watchMigration(str, m)
		return
	case opArrived:
		d.arrived(str, m)
		return
	}
	j, share := d.findShare(m.Job)
	var hosts []string
	if j != nil {
		j.mu.Lock()
		hosts = j.hosts
		j.mu.Unlock()
	}
	h := slices.Index(hosts, m.Host)
	switch {
	case j == nil:
		writeJSON(str, msgMigrated, migratedMsg{NotHere: fmt.Sprintf("no job %s on host %s", m.Job, d.cfg.Name)})
		return
	case share == nil:
		writeJSON(str, msgMigrated, migratedMsg{Error: fmt.Sprintf("job %s takes no checkpoints, so its ranks cannot move: submit it with --checkpoint-every", m.Job)})
		return
	case !share.IsCoordinator():
		writeJSON(str, msgMigrated, migratedMsg{NotHere: fmt.Sprintf("host %s does not run the coordinator of job %s", d.cfg.Name, m.Job)})
		return
	case share.Mover == nil:
		writeJSON(str, msgMigrated, migratedMsg{Error: fmt.Sprintf("job %s cannot move its ranks from this host", m.Job)})
		return
	case h < 0:
		writeJSON(str, msgMigrated, migratedMsg{Error: fmt.Sprintf("host %s has no part in job %s (its hosts: %s)", m.Host, m.Job, strings.Join(hosts, ", "))})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateWait)
	defer cancel()
	begun := time.Now()
	d.logf("job %s: %s %s asked for by %s", m.Job, m.Op, m.Host, peer)
	var ans migratedMsg
	var err error
	switch m.Op {
	case opMigrate:
		var res driver.MigrateResult
		res, err = share.Migrate(ctx, m.Rank, ckpt.HostID(h))
		ans = migratedMsg{Downtime: res.Downtime, Total: res.Total, Sent: res.Sent, Size: res.Size, Rounds: res.Rounds}
		if err == nil && !res.Stopped.IsZero() {
			// The rank is routed to its target: it says when it ran.
			if took, ok := d.askArrived(j, m.Job, hosts[h], res.Stopped); ok {
				ans.Downtime, ans.Total = took, time.Since(begun)
			}
		}
	case opDrain:
		err = share.Drain(ctx, ckpt.HostID(h))
	case opUndrain:
		err = share.Undrain(ckpt.HostID(h))
	default:
		err = fmt.Errorf("unknown operation %q", m.Op)
	}
	if err != nil {
		ans.Error = hostNames(err.Error(), hosts)
	}
	writeJSON(str, msgMigrated, ans)
}

// coreHost is how the protocol's cores name a host: h0, h1 …
var coreHost = regexp.MustCompile(`\bh([0-9]+)\b`)

// hostNames puts the hosts' names for the cores' h0, h1 … in a line.
func hostNames(line string, hosts []string) string {
	return coreHost.ReplaceAllStringFunc(line, func(s string) string {
		if i, err := strconv.Atoi(s[1:]); err == nil && i < len(hosts) {
			return hosts[i]
		}
		return s
	})
}

// findShare returns job id here and its share, nil if it has none.
func (d *Daemon) findShare(id string) (*job, *driver.Share) {
	j := d.findJob(id)
	if j == nil {
		return nil, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j, j.share
}

// watchPeriod is how often a watched migration's progress is sent.
const watchPeriod = 200 * time.Millisecond

// watchMigration answers a watch of rank's migration: NotHere if the
// rank does not run here, else its progress every watchPeriod while it
// runs here, until its migration ends here or the watcher goes away.
func (d *Daemon) watchMigration(str io.Writer, m migrateMsg) {
	_, share := d.findShare(m.Job)
	if share == nil || !share.Runs(m.Rank) {
		writeJSON(str, msgMigrated, migratedMsg{NotHere: fmt.Sprintf("rank %d of job %s does not run on host %s", m.Rank, m.Job, d.cfg.Name)})
		return
	}
	t := time.NewTicker(watchPeriod)
	defer t.Stop()
	seen := false
	for range t.C {
		p, ok := share.Progress(m.Rank)
		if !ok && (seen || !share.Runs(m.Rank)) {
			writeJSON(str, msgMigrated, migratedMsg{})
			return
		}
		seen = seen || ok
		if writeJSON(str, msgMigrated, migratedMsg{Watching: true, Rounds: p.Rounds, Sent: p.Sent, Size: p.Size, DirtyRate: p.DirtyRate}) != nil {
			return
		}
	}
}

// arrivedWait bounds the wait for a moved rank to run on its target.
const arrivedWait = time.Minute

// arrived answers how long the rank that stopped at m.Stopped was
// stopped, once it runs here.
func (d *Daemon) arrived(str io.Writer, m migrateMsg) {
	_, share := d.findShare(m.Job)
	if share == nil {
		writeJSON(str, msgMigrated, migratedMsg{Error: fmt.Sprintf("no checkpointed job %s on host %s", m.Job, d.cfg.Name)})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), arrivedWait)
	defer cancel()
	took, ok := share.Arrived(ctx, time.Unix(0, m.Stopped))
	if !ok {
		writeJSON(str, msgMigrated, migratedMsg{Error: fmt.Sprintf("the rank did not run on host %s within %v", d.cfg.Name, arrivedWait)})
		return
	}
	writeJSON(str, msgMigrated, migratedMsg{Downtime: took})
}

// askArrived asks the target host of job j's migration how long the rank
// that stopped at stopped was stopped, once it runs there.
func (d *Daemon) askArrived(j *job, id, target string, stopped time.Time) (time.Duration, bool) {
	if target == d.cfg.Name {
		ctx, cancel := context.WithTimeout(context.Background(), arrivedWait)
		defer cancel()
		j.mu.Lock()
		share := j.share
		j.mu.Unlock()
		return share.Arrived(ctx, stopped)
	}
	j.mu.Lock()
	addr := j.peers[target]
	j.mu.Unlock()
	var a migratedMsg
	err := request(context.Background(), addr, 10*time.Second, d.ctl, arrivedWait, msgMigrate,
		migrateMsg{Job: id, Op: opArrived, Stopped: stopped.UnixNano()}, msgMigrated, &a)
	if err != nil || a.Error != "" {
		d.logf("job %s: the downtime at %s is not known: %v%s", id, target, err, a.Error)
		return 0, false
	}
	return a.Downtime, true
}

// drainedFile, under --data, marks a drained host: it stays drained
// across a restart until undrained.
const drainedFile = "drained"

// setDrained drains or undrains this host, and keeps it under --data.
func (d *Daemon) setDrained(on bool) error {
	path := filepath.Join(d.cfg.DataDir, drainedFile)
	var err error
	if on {
		err = writeFileSync(path, []byte("drained: this host takes no new jobs until `"+drainedHint+" "+d.cfg.Name+"`\n"))
	} else if err = os.Remove(path); errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("host %s could not keep its drain under its --data (%v): it is not changed", d.cfg.Name, err)
	}
	d.drained.Store(on)
	return nil
}

// loadDrained restores the drain of a host restarted on its --data.
func (d *Daemon) loadDrained() {
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, drainedFile)); err == nil {
		d.drained.Store(true)
		d.logf("this host was drained before it started: it takes no new jobs until `%s %s`", drainedHint, d.cfg.Name)
	}
}

// refuseDrained answers a PREPARE on a drained host; false if it is not.
func (d *Daemon) refuseDrained(str io.Writer) bool {
	if !d.drained.Load() {
		return false
	}
	writeJSON(str, msgError, errorMsg{Error: fmt.Sprintf("host %s is drained: it takes no new jobs until `%s %s`", d.cfg.Name, drainedHint, d.cfg.Name)})
	return true
}

// acceptMigration reads the HANDOVER of a migration stream from host
// peer and answers it: the rank is taken if this host's read-only inputs
// hash as the source's do. A state received before and never adopted is
// dropped. gen is the generation of the rank's moves here the stream is
// of (driver.Share.StageGen).
func (d *Daemon) acceptMigration(j *job, store *ckpt.Store, str *quic.Stream, peer string) (rank int, gen uint64, ok bool) {
	t, body, err := readMsg(str)
	var h handoverMsg
	if err == nil && t != msgHandover {
		err = fmt.Errorf("%w: %s instead of HANDOVER", ErrProtocol, t)
	}
	if err == nil {
		err = decodeJSON(t, body, &h)
	}
	if err != nil {
		d.logf("job %s: migration from %s: %v", j.id, peer, err)
		return 0, 0, false
	}
	j.mu.Lock()
	share := j.share
	j.mu.Unlock()
	refuse := func(why string) (int, uint64, bool) {
		d.logf("job %s: rank %d from %s refused: %s", j.id, h.Rank, peer, why)
		writeJSON(str, msgTaken, takenMsg{Error: fmt.Sprintf("%s refused rank %d: %s", d.cfg.Name, h.Rank, why)})
		return 0, 0, false
	}
	if share == nil || share.Mover == nil {
		return refuse("the job cannot move ranks here")
	}
	switch {
	case h.Cancel:
		share.DropStaged(h.Rank)
		store.DeleteAfter(driver.MigrationKey(h.Rank), 0)
		d.logf("job %s: the move of rank %d here from %s is off: what came of it is dropped", j.id, h.Rank, peer)
		writeJSON(str, msgTaken, takenMsg{})
		return 0, 0, false
	case h.Final:
		d.finalIn(share, str, h.Rank)
		return 0, 0, false
	}
	if share.Draining(share.Host) {
		return refuse("it is draining")
	}
	mine, err := share.Mover.Inputs()
	if err != nil {
		return refuse(err.Error())
	}
	if why := inputsDiffer(h.Inputs, mine, peer); why != "" {
		return refuse(why)
	}
	if h.Base == 0 { // of a migration that did not end here
		share.DropStaged(h.Rank)
		store.DeleteAfter(driver.MigrationKey(h.Rank), 0)
	} else {
		// The round before is written into the worker made ahead first,
		// so that the last state finds it up to date; for at most
		// stageWait, which the source's wait for the round counts
		// against its MigrateTimeout (the first round, the whole memory,
		// can take seconds on a loaded machine).
		staged, gen := make(chan struct{}), share.StageGen(h.Rank)
		go func() {
			share.MigrationIn(h.Rank, gen)
			close(staged)
		}()
		t := time.NewTimer(stageWait)
		select {
		case <-staged:
		case <-t.C:
		}
		t.Stop()
	}
	d.logf("job %s: receiving rank %d from %s", j.id, h.Rank, peer)
	if writeJSON(str, msgTaken, takenMsg{}) != nil {
		return 0, 0, false
	}
	return h.Rank, share.StageGen(h.Rank), ckpt.Failpoint("migrate:receive") == nil
}

// finalIn reads a rank's last state, sent straight, writes it into the
// worker made here ahead, and answers.
func (d *Daemon) finalIn(share *driver.Share, str io.ReadWriter, rank int) {
	t, body, err := readMsg(str)
	if err == nil && t != msgFinal {
		err = fmt.Errorf("%w: %s instead of FINAL", ErrProtocol, t)
	}
	var fs *driver.FinalState
	if err == nil {
		fs, err = driver.DecodeFinal(body)
	}
	if err == nil && fs.Rank != rank {
		err = fmt.Errorf("the last state of rank %d came as rank %d's", fs.Rank, rank)
	}
	if err == nil {
		err = share.FinalIn(fs)
	}
	var tk takenMsg
	if err != nil {
		tk.Error = fmt.Sprintf("%s did not take the last state of rank %d: %v", d.cfg.Name, rank, err)
	}
	writeJSON(str, msgTaken, tk)
}

// inputsDiffer says which read-only input differs between the source's
// hashes and ours, or "".
func inputsDiffer(theirs, mine []string, peer string) string {
	for _, t := range theirs {
		guest, _, _ := strings.Cut(t, "=")
		i := slices.IndexFunc(mine, func(m string) bool { return strings.HasPrefix(m, guest+"=") })
		switch {
		case i < 0:
			return fmt.Sprintf("it has no input %s", guest)
		case mine[i] != t:
			return fmt.Sprintf("its input %s differs from %s's (hash)", guest, peer)
		}
	}
	return ""
}

// sendFinal sends a rank's last state straight to host to, and returns
// the bytes sent once it is written into the worker made there ahead.
func (r *replicator) sendFinal(fs *driver.FinalState, to ckpt.HostID) (int64, error) {
	body := driver.AppendFinal(nil, fs)
	err := r.migrationRequest(to, handoverMsg{Rank: fs.Rank, Base: fs.Base, Final: true}, func(str io.Writer) error {
		return writeMsg(str, msgFinal, body)
	})
	return int64(len(body)), err
}

// dialAhead is a migration stream being opened ahead of its use.
type dialAhead struct {
	done chan struct{}
	conn *quic.Conn
	str  *quic.Stream
	err  error
}

// dialAhead opens a migration stream to host to ahead of a rank's last
// state (its handshake then overlaps the rank's last capture); the next
// migration request to it takes it. One unused closes with its idle
// timeout.
func (r *replicator) dialAhead(to ckpt.HostID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dialed == nil {
		r.dialed = map[ckpt.HostID]*dialAhead{}
	}
	if r.dialed[to] != nil {
		return
	}
	da := &dialAhead{done: make(chan struct{})}
	r.dialed[to] = da
	go func() {
		da.conn, da.str, da.err = r.open(to, migrationFlag)
		close(da.done)
	}()
}

// openMigration returns a migration stream to host to: one opened ahead,
// or a new one.
func (r *replicator) openMigration(to ckpt.HostID) (*quic.Conn, *quic.Stream, error) {
	r.mu.Lock()
	da := r.dialed[to]
	delete(r.dialed, to)
	r.mu.Unlock()
	if da != nil {
		<-da.done
		if da.err == nil && da.conn.Context().Err() == nil {
			return da.conn, da.str, nil
		}
		if da.conn != nil {
			da.conn.CloseWithError(0, "")
		}
	}
	return r.open(to, migrationFlag)
}

// cancelMigration tells host to that the migration of rank to it is off.
func (r *replicator) cancelMigration(rank int, to ckpt.HostID) error {
	return r.migrationRequest(to, handoverMsg{Rank: rank, Cancel: true}, nil)
}

// migrationRequest sends h to host to on a migration stream, then what
// then writes, and reads the TAKEN that answers.
func (r *replicator) migrationRequest(to ckpt.HostID, h handoverMsg, then func(io.Writer) error) error {
	conn, str, err := r.openMigration(to)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	err = writeJSON(str, msgHandover, h)
	if err == nil && then != nil {
		err = then(str)
	}
	if err != nil {
		return fmt.Errorf("host %s: %v", r.hosts[to], err)
	}
	return r.readTaken(to, str)
}

// readTaken reads the TAKEN that answers a migration stream: nil, or its
// one-line refusal.
func (r *replicator) readTaken(to ckpt.HostID, str io.Reader) error {
	t, body, err := readMsg(str)
	var tk takenMsg
	if err == nil && t != msgTaken {
		err = fmt.Errorf("%w: %s instead of TAKEN", ErrProtocol, t)
	}
	if err == nil {
		err = decodeJSON(t, body, &tk)
	}
	switch {
	case err != nil:
		return fmt.Errorf("host %s: %v", r.hosts[to], err)
	case tk.Error != "":
		return errors.New(tk.Error)
	}
	return nil
}

// sendMigration sends the migration state k of epoch to host to, once it
// took it, and returns the bytes of chunk values sent.
func (r *replicator) sendMigration(k ckpt.Key, epoch, base uint64, to ckpt.HostID, inputs []string, sent *atomic.Int64) (int64, error) {
	var n int64
	err := sendAgain(func() error {
		var err error
		n, err = r.sendMigrationOnce(k, epoch, base, to, inputs, sent)
		return err
	})
	return n, err
}

func (r *replicator) sendMigrationOnce(k ckpt.Key, epoch, base uint64, to ckpt.HostID, inputs []string, sent *atomic.Int64) (int64, error) {
	conn, str, err := r.open(to, migrationFlag)
	if err != nil {
		return 0, err
	}
	defer conn.CloseWithError(0, "")
	if err := writeJSON(str, msgHandover, handoverMsg{Rank: int(k.Worker), Base: base, Inputs: inputs}); err != nil {
		return 0, fmt.Errorf("host %s: %v", r.hosts[to], err)
	}
	if err := r.readTaken(to, str); err != nil {
		return 0, err
	}
	store := r.j.ckptStore()
	if store == nil {
		return 0, fmt.Errorf("the job's store is closed")
	}
	st, err := replica.Send(countedStream{rw: str, js: r.d.metrics.Jobs(), sent: sent}, store, k, epoch, replica.Options{Base: base})
	return st.Bytes, err
}
