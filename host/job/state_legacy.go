package job

import (
	"cmp"
	"errors"
	"slices"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// legacyName is the Job of the checkpoint keys of a single run made by an
// earlier release (run.json's "job"): such a run has no commit records,
// since each of its checkpoints counted once durable, and its
// checkpoints' host state is the Worker's alone. A job of one resumes it
// as it is, and goes on under the same name, adding commit records.
const legacyName = "run"

// committed returns the committed epochs of the job rec describes,
// oldest first: its commit records, and for a job of one (a single run of
// an earlier release among them) each of its checkpoints, readable or
// not, so that a damaged one is refused by name. One rank's durable
// checkpoint is a whole cut: it counts without its commit record, which
// `ckpt repair` may not bring back.
func committed(st *ckpt.Store, rec *runRecord) ([]ckpt.Commit, error) {
	commits, err := st.Commits(rec.Job)
	if err != nil || (rec.Job != legacyName && rec.N > 1) {
		return commits, err
	}
	infos, err := st.Epochs(ckpt.Key{Job: rec.Job})
	if errors.Is(err, ckpt.ErrNotFound) {
		return commits, nil // an empty store: the caller says so
	}
	if err != nil {
		return nil, err
	}
	// A checkpoint older than the newest commit record and without its
	// own lost that record to --keep: it is being dropped, and does not
	// count (a store of an earlier release has no records at all).
	var newest uint64
	for _, c := range commits {
		newest = max(newest, c.Epoch)
	}
	for _, in := range infos {
		if in.Epoch < newest {
			continue
		}
		if !slices.ContainsFunc(commits, func(c ckpt.Commit) bool { return c.Epoch == in.Epoch }) {
			commits = append(commits, ckpt.Commit{Job: rec.Job, Epoch: in.Epoch, Workers: 1, Created: in.Created})
		}
	}
	slices.SortFunc(commits, func(a, b ckpt.Commit) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return commits, nil
}

// legacyCheckpoint reads the host state of a single run's checkpoint made
// by an earlier release as the job state of rank 0: the Worker's state,
// the run binding it kept, and no channels.
func legacyCheckpoint(b []byte, rank int) (*rankCheckpoint, *transport.RankState, error) {
	si, err := host.ParseState(b)
	if err != nil {
		return nil, nil, err
	}
	comm := &transport.RankState{Rank: uint32(rank)}
	rc := &rankCheckpoint{Version: rankStateVersion, Worker: b, Run: si.Run, Comm: transport.AppendRankState(nil, comm)}
	return rc, comm, nil
}
