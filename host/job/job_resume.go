package job

import (
	"errors"
	"fmt"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// chooseEpoch picks the epoch to restore: the one asked for, or the
// newest committed one whose every rank's checkpoint verifies and whose
// files every rank's journal can return to. Each epoch refused on the way
// is said in one warning line, and the last one in the error if none is
// left. A job killed before its first commit starts over (files rolled
// back, output not printed twice).
func (j *jobRun) chooseEpoch() error {
	commits, err := committed(j.store, j.rec)
	if err != nil {
		return err
	}
	j.journals = make([]*journalState, j.n)
	for r := range j.n {
		j.journals[r] = readJournalState(j.journal(r), len(j.rec.Mounts))
	}
	var refused []error
	found := false
	for i := len(commits) - 1; i >= 0 && !found; i-- {
		c := commits[i]
		if j.cfg.Epoch != 0 && c.Epoch != j.cfg.Epoch {
			continue
		}
		err := j.loadEpoch(c)
		if err == nil {
			err = j.journalsServe(c.Epoch)
		}
		if err == nil {
			found = true
			break
		}
		if j.cfg.Epoch != 0 || errors.Is(err, ErrForeignRun) {
			return err
		}
		refused = append(refused, err)
	}
	switch {
	case found:
		for _, err := range refused {
			j.logf("warning: %v; the %s falls back to an older checkpoint", err, j.what())
		}
		if len(refused) > 0 {
			j.logf("warning: falling back to checkpoint %d", j.from)
		}
	case j.cfg.Epoch != 0:
		return fmt.Errorf("%w: checkpoint %d of the %s in %s was not committed", ErrNoCheckpoint, j.cfg.Epoch, j.what(), j.cfg.StateDir)
	case len(refused) > 0:
		more := ""
		if len(refused) > 1 {
			more = fmt.Sprintf(" (and %d older ones refused)", len(refused)-1)
		}
		return fmt.Errorf("%w: %v%s", ErrNoCheckpoint, refused[0], more)
	case j.rec.Epoch > 0:
		return fmt.Errorf("%w: state dir %s holds no checkpoint, though its run record names checkpoint %d (%s is empty or was replaced); restore it from a backup, or start the %s over with another --state",
			ErrNoCheckpoint, j.cfg.StateDir, j.rec.Epoch, storeFile, j.what())
	default:
		j.from = 0
		clear(j.mans)
		clear(j.states)
	}
	// Later epochs belong to an abandoned timeline (or were refused):
	// drop them, so that no later resume picks them.
	for r := range j.n {
		if err := j.store.DeleteAfter(j.key(r), j.from); err != nil {
			return err
		}
	}
	if err := j.store.DeleteCommitsAfter(j.rec.Job, j.from); err != nil {
		return err
	}
	if j.from != 0 && j.cfg.Verbose {
		var mem uint64
		for _, m := range j.mans {
			mem += m.MemSize
		}
		if j.n == 1 {
			j.logf("resumed from checkpoint %d (%s)", j.from, host.FormatBytes(mem))
		} else {
			j.logf("resumed the job of %d workers from epoch %d (%s)", j.n, j.from, host.FormatBytes(mem))
		}
	}
	return nil
}

// journalsServe refuses epoch if a rank's file journal cannot return its
// files to it.
func (j *jobRun) journalsServe(epoch uint64) error {
	for r, js := range j.journals {
		if !js.serves(epoch) {
			return fmt.Errorf("%w: %s%s, so the files cannot be returned to checkpoint %d", ErrDamagedState, j.who(r), js.problem(epoch), epoch)
		}
	}
	return nil
}

// loadEpoch reads and verifies every rank's checkpoint of a committed
// epoch.
func (j *jobRun) loadEpoch(c ckpt.Commit) error {
	if int(c.Workers) != j.n {
		return fmt.Errorf("%w: epoch %d was committed for %d workers, the job has %d", ErrNoCheckpoint, c.Epoch, c.Workers, j.n)
	}
	return j.loadRanks(c.Epoch, allRanks(j.n))
}

// loadRanks reads and verifies the checkpoints of a committed epoch of
// the given ranks, and makes them what is restored: by rank, its manifest
// and job state (nil for the others), and the ranks' channel states.
func (j *jobRun) loadRanks(epoch uint64, ranks []int) error {
	mans := make([]*ckpt.Manifest, j.n)
	states := make([]*rankCheckpoint, j.n)
	comm := make([]transport.RankState, 0, len(ranks))
	for _, r := range ranks {
		m, err := j.store.Manifest(j.key(r), epoch)
		if err == nil && m.Binding != j.bind {
			err = fmt.Errorf("%w: checkpoint %d of %s was made by another build of the module", ckpt.ErrForeignModule, epoch, j.rankName(r))
		}
		if err == nil {
			if err = j.verifyRank(r, m); errors.Is(err, ckpt.ErrCorrupt) {
				j.refuse(epoch)
			}
		}
		if err != nil {
			return err
		}
		rc, cs, err := decodeRankCheckpoint(m.Host, r)
		if err == nil && cs.Rank != uint32(r) {
			err = fmt.Errorf("job: checkpoint %d of rank %d holds the channels of rank %d", epoch, r, cs.Rank)
		}
		if err != nil {
			return fmt.Errorf("checkpoint %d, %s: %w", epoch, j.rankName(r), err)
		}
		if err := j.rec.checkRun(epoch, rc.Run); err != nil {
			return err
		}
		mans[r], states[r] = m, rc
		comm = append(comm, *cs)
	}
	j.from, j.mans, j.states, j.comm = epoch, mans, states, comm
	return nil
}

// rankName names rank in messages: "the run" in a job of one.
func (j *jobRun) rankName(r int) string {
	if j.n == 1 {
		return "the run"
	}
	return fmt.Sprintf("rank %d", r)
}
