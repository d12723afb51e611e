package node

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/jobctl"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/transport"
)

// A job submitted with checkpoints keeps, on each of its hosts, a
// directory under the host's --data: jobs/ID/ckpt.db, the checkpoints of
// the ranks run here and the replicas of other hosts' ranks, and
// jobs/ID/commit-E, the commit record of each committed epoch
// (ckpt.AppendMsg of a COMMIT). The job's hosts, by ckpt.HostID, are
// those of its ranks in the order rank 0, 1, … first names them; the
// coordinator runs on host 0, the host of rank 0.

// jobRounds is how many checkpoint rounds of a job may be under way at
// once (ckpt.ProtoConfig.MaxRounds). Every host of a job runs the same
// release, so they agree on it. With two, the stores must keep the
// committed epoch before the newest whatever the rounds under way hold
// (ckpt.Store.KeepFrom): a resume that finds the newest damaged falls
// back to it (TestLazyRestoreShareDamagedFallsBack).
const jobRounds = 2

// jobDir is where a job's checkpoints are kept on a host.
func jobDir(dataDir, id string) string { return filepath.Join(dataDir, "jobs", id) }

// jobHosts returns a placement's hosts in the order of their first rank.
func jobHosts(placement []string) []string {
	var hs []string
	for _, h := range placement {
		if !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// openShare opens the store of a job with checkpoints here and makes the
// share's configuration; startShare completes it once every host's
// address is known.
func (d *Daemon) openShare(j *job, p prepareMsg, module []byte) (*driver.Share, error) {
	dir := jobDir(d.cfg.DataDir, j.id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("node: %v", err)
	}
	if p.Resume == nil {
		// Kept for `submit --resume` (daemon_resume.go).
		if err := saveSpec(dir, p, module); err != nil {
			return nil, fmt.Errorf("node: job %s: %v", j.id, err)
		}
	}
	cfg := ckpt.Config{Path: filepath.Join(dir, "ckpt.db")}
	if slices.ContainsFunc(p.Mounts, func(m mountMsg) bool { return !m.ReadOnly }) {
		// A rank's files are made on the host it moves to from the file
		// deltas of all its checkpoints (host/job share_files.go): the
		// store keeps every epoch until the job ends.
		cfg.Keep = math.MaxInt32
	}
	store, err := ckpt.Open(cfg)
	if err != nil {
		return nil, err
	}
	hosts := jobHosts(p.Placement)
	place := make([]ckpt.HostID, len(p.Placement))
	for r, h := range p.Placement {
		place[r] = ckpt.HostID(slices.Index(hosts, h))
	}
	share := &driver.Share{
		Dir:   dir,
		Store: store,
		Proto: ckpt.ProtoConfig{Hosts: len(hosts), Coordinator: 0, Place: place, Replicas: p.Replicas,
			FailureTimeout: j.failureTimeout, MaxRounds: jobRounds},
		Host:     ckpt.HostID(slices.Index(hosts, d.cfg.Name)),
		Every:    p.CheckpointEvery,
		Overhead: p.CheckpointOverhead,
	}
	if r := p.Resume; r != nil {
		hosts = r.Hosts
		share.Host = ckpt.HostID(slices.Index(hosts, d.cfg.Name))
		share.Proto.Hosts, share.Proto.Coordinator, share.Proto.Place = len(hosts), r.Coordinator, r.Place
		share.Proto.Inc, share.Proto.Committed, share.Proto.Holders = r.Inc, r.Epoch, r.Holders
		share.Live, share.Next = r.Live, r.Next
		share.Before = committedBefore(dir, r.Epoch)
		if share.Host < 0 {
			store.Close()
			return nil, fmt.Errorf("node: job %s: host %s is not among its hosts %v", j.id, d.cfg.Name, hosts)
		}
	}
	share.PersistCommit = func(rec *ckpt.CommitRecord) error { return persistCommit(j, rec) }
	share.Mover = d.mover(hosts, p.Mounts)
	j.mu.Lock()
	j.dir, j.store, j.share, j.hosts = dir, store, share, hosts
	j.mu.Unlock()
	return share, nil
}

// startShare opens the job's control streams and its replicas, once START
// gave every host's address.
func (d *Daemon) startShare(j *job, share *driver.Share, addrs map[string]string, stop <-chan struct{}) error {
	coord := share.Proto.Coordinator
	ep, err := d.jobctl.Open(jobctl.Config{
		Job: j.id, Hosts: j.hosts, Self: share.Host, Coordinator: coord, Inc: share.Proto.Inc,
		CoordinatorAddr: addrs[j.hosts[coord]], FailureTimeout: j.failureTimeout,
		Logf: func(format string, args ...any) { d.logf(format, args...) },
	})
	if err != nil {
		return err
	}
	go func() { <-stop; ep.Close() }()
	tc, err := transport.WithALPN(d.tls, replicaALPN)
	if err != nil {
		return err
	}
	rep := &replicator{d: d, j: j, hosts: j.hosts, addrs: addrs, tls: tc, base: map[[2]int]uint64{}}
	share.Control, share.Replicate, share.Stop = ep, rep.replicate, stop
	if share.Mover != nil {
		share.Mover.Send, share.Mover.Final, share.Mover.Cancel = rep.sendMigration, rep.sendFinal, rep.cancelMigration
		share.Mover.Dial = rep.dialAhead
	}
	return nil
}

// closeShare closes the job's store here; its directory stays.
func (d *Daemon) closeShare(j *job) {
	j.mu.Lock()
	store := j.store
	j.store = nil
	j.mu.Unlock()
	if store != nil {
		store.Close()
		d.logf("job %s: its checkpoints here are kept in %s", j.id, j.dir)
	}
}

// persistCommit makes a commit record durable in the job's directory and
// store here.
func persistCommit(j *job, rec *ckpt.CommitRecord) error {
	j.mu.Lock()
	dir, store := j.dir, j.store
	j.mu.Unlock()
	if store == nil {
		return fmt.Errorf("node: job %s has ended here", j.id)
	}
	b := ckpt.AppendMsg(nil, ckpt.Msg{Kind: ckpt.MsgCommit, Epoch: rec.Epoch, Record: rec})
	if err := writeFileSync(filepath.Join(dir, fmt.Sprintf("commit-%d", rec.Epoch)), b); err != nil {
		return err
	}
	return store.CommitJob(ckpt.Commit{Job: shareKeyJob, Epoch: rec.Epoch, Workers: uint32(len(rec.Place))})
}

// writeFileSync writes a file whole and durably: a temporary file,
// synced, renamed over the name, and the directory synced.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// checkpointJob answers `librahost checkpoint --job`: the host that runs
// the job's coordinator begins a checkpoint at once and answers once it
// is committed.
func (d *Daemon) checkpointJob(str io.Writer, peer string, body []byte) {
	var c checkpointMsg
	if err := decodeJSON(msgCheckpoint, body, &c); err != nil {
		d.refuseRequest(str, peer, err)
		return
	}
	j := d.findJob(c.Job)
	var share *driver.Share
	if j != nil {
		j.mu.Lock()
		share = j.share
		j.mu.Unlock()
	}
	switch {
	case j == nil:
		writeJSON(str, msgCheckpointed, checkpointedMsg{NotHere: fmt.Sprintf("no job %s on host %s", c.Job, d.cfg.Name)})
	case share == nil:
		writeJSON(str, msgCheckpointed, checkpointedMsg{Error: fmt.Sprintf("job %s takes no checkpoints: submit it with --checkpoint-every", c.Job)})
	case !share.IsCoordinator():
		writeJSON(str, msgCheckpointed, checkpointedMsg{NotHere: fmt.Sprintf("host %s does not run the coordinator of job %s", d.cfg.Name, c.Job)})
	default:
		d.logf("job %s: checkpoint asked for by %s", c.Job, peer)
		e, err := share.Checkpoint()
		if err != nil {
			writeJSON(str, msgCheckpointed, checkpointedMsg{Epoch: e, Error: err.Error()})
			return
		}
		writeJSON(str, msgCheckpointed, checkpointedMsg{Epoch: e})
	}
}

// newIncarnation moves job j here to incarnation inc of a recovery: an
// Endpoint of inc routed by place takes the place of the job's Endpoint,
// which is closed (its links with it), and the links to the peers are
// dialled again; a peer refuses them until it has moved too.
func (d *Daemon) newIncarnation(j *job, inc uint64, place []ckpt.HostID, peers map[string]chan struct{},
	newEp func(uint64, func(uint32) transport.HostID, []uint32) (*transport.Endpoint, error)) (*transport.Endpoint, error) {
	hosts := make([]transport.HostID, len(place))
	var here []uint32 // restored before they receive (the share's recover)
	for r, h := range place {
		if h < 0 || int(h) >= len(j.hosts) {
			return nil, fmt.Errorf("node: job %s: rank %d placed on host h%d of %d", j.id, r, h, len(j.hosts))
		}
		hosts[r] = transport.HostID(j.hosts[h])
		if hosts[r] == transport.HostID(d.cfg.Name) {
			here = append(here, uint32(r))
		}
	}
	ep, err := newEp(inc, func(r uint32) transport.HostID { return hosts[r] }, here)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	old := j.ep
	j.ep = ep
	if old != nil {
		d.links = metrics.AddCounters(d.links, old.Counters())
	}
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	for _, down := range peers {
		select {
		case down <- struct{}{}:
		default:
		}
	}
	noteInc(j, inc)
	d.logf("job %s: incarnation %d: ranks on %v", j.id, inc, hosts)
	return ep, nil
}

// committedBefore is the newest epoch before epoch whose commit record
// the job's directory dir holds (0: none).
func committedBefore(dir string, epoch uint64) uint64 {
	ents, _ := os.ReadDir(dir)
	var before uint64
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "commit-"); ok {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil && v < epoch {
				before = max(before, v)
			}
		}
	}
	return before
}
