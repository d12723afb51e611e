package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/lazy"
)

// A run resumed on this host restores its memory lazily (host.Worker,
// host/lazy) where it can: the guest starts once the manifest is checked
// (its digest, its build, its chunk list against its size), and each
// chunk's place is found in the index, and the chunk read, decompressed
// and checked, on the guest's first touch or in the background, by the
// filler process, in a snapshot of the index pinned for it
// (ckpt.Store.PinIndex; where the index cannot be pinned, every place is
// found before the start, ckpt.Store.MemorySources). So the up-front check
// reads no chunk of the memory and looks none up (the file delta's chunks
// are still checked), and a damaged chunk, or one missing from the index,
// is found late: the run ends with the error the up-front check would
// have given, in one line.
//
// A late find is handled as a crash after the checkpoint resumed: no
// checkpoint is taken until the whole memory is in (a capture waits), so
// none is made from the damaged one; the output the guest printed before
// the find (made only from memory that read back) is counted in the
// output ledger; and the find leaves a mark in the state directory
// (lazyRefusedFile) so that the next resume checks every chunk up front,
// as before, refuses the damaged epoch and falls back to the one before,
// whose replay the ledger keeps from printing twice. The mark goes once
// that resume has chosen its epoch.
//
// A job of several ranks on this host restores each rank's memory lazily,
// each with a filler process of its own, by the same rules, made whole
// for the job:
//
//   - a coordinated checkpoint waits until every rank's memory is in:
//     each rank's capture waits for its own fill, and an epoch is
//     committed only once every rank's checkpoint of it is durable, so no
//     epoch is committed until every fill is done, and none holds a
//     chunk that did not read back;
//   - a rank whose chunk does not read back says nothing more: its output
//     is dropped, it sends no message (host: what it would send may be
//     made of the zeros it was let past with) and it is stopped; the job
//     ends as for any failing rank, in that rank's one-line error, the
//     other ranks stopped (what they printed came from memory that read
//     back and messages sent before the find, and the ledger counts it);
//   - the mark makes the next resume check every chunk of every rank up
//     front: the epoch is refused for the whole job, every rank falls back
//     to the same committed epoch before it, and the ledger keeps every
//     rank's replay from printing twice.
//
// A share of a job over several hosts restores the ranks placed here
// lazily at a recovery (and so at `submit --resume`) by the first two
// rules: the coordinator commits an epoch only once every rank's
// checkpoint of it is durable, and the submitter prints each byte of a
// rank's streams once, by its offset. The third has nothing to build on:
// a share never falls back (the coordinator rolls back to the newest
// committed epoch, and a recovery whose up-front check refuses it fails
// the job). So a late find fails the job, in the rank's one-line error,
// as that check does at a recovery; the mark, in the job's directory
// here, makes a later recovery here check every chunk up front. The
// fall back is `submit --resume`'s: the find, and a refusal by that
// check, also add the epoch to RefusedFile in the job's directory, which
// stays; the host then no longer offers its rank checkpoints of that
// epoch to a resume (HOLDS), which so goes on from an older committed
// epoch, or from the same one held undamaged on another host.
//
// A rank whose program had ended at the epoch (no memory) is checked as
// before. A machine where host.LazyRestoreSupported fails restores
// eagerly.
const lazyRefusedFile = "lazy-refused"

// RefusedFile, in a share's job directory, lists the epochs (one a line)
// of which a check on this host refused a rank's checkpoint: a damaged
// chunk found late by a lazy restore or up front at a recovery.
const RefusedFile = "refused"

// refuse adds epoch to the share's RefusedFile.
func (j *jobRun) refuse(epoch uint64) {
	if j.share == nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(j.share.s.Dir, RefusedFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = fmt.Fprintf(f, "%d\n", epoch)
		err = errors.Join(err, f.Sync(), f.Close())
	}
	if err != nil {
		j.logf("warning: %v: a resume may be offered the damaged checkpoint %d again", err, epoch)
	}
}

// ReadRefused returns the epochs listed in dir's RefusedFile.
func ReadRefused(dir string) map[uint64]bool {
	b, _ := os.ReadFile(filepath.Join(dir, RefusedFile))
	out := map[uint64]bool{}
	for _, l := range strings.Fields(string(b)) {
		if e, err := strconv.ParseUint(l, 10, 64); err == nil {
			out[e] = true
		}
	}
	return out
}

// lazyMode says whether the job restores lazily, and if not why; decided
// once, at its first check.
func (j *jobRun) lazyMode() (bool, string) {
	if j.lazyDecided {
		return j.lazyWhy == "", j.lazyWhy
	}
	j.lazyDecided = true
	if b, err := os.ReadFile(j.lazyMark()); err == nil {
		j.lazyMarked = true
		j.lazyWhy = fmt.Sprintf("a lazy restore of checkpoint %s found a damaged chunk: every chunk is checked first", strings.TrimSpace(string(b)))
	} else if err := host.LazyRestoreSupported(); err != nil {
		j.lazyWhy = err.Error()
	}
	return j.lazyWhy == "", j.lazyWhy
}

// lazyMark is the path of the job's lazyRefusedFile: in its state
// directory, or a share's in the job's directory on this host.
func (j *jobRun) lazyMark() string {
	if j.share != nil {
		return filepath.Join(j.share.s.Dir, lazyRefusedFile)
	}
	return filepath.Join(j.cfg.StateDir, lazyRefusedFile)
}

// verifyRank is the up-front check of rank r's checkpoint m: every chunk
// read back and checked, or for a lazy restore the file delta's chunks
// only, and the index pinned for the fill (lazyPlaces).
func (j *jobRun) verifyRank(r int, m *ckpt.Manifest) error {
	t0 := time.Now()
	if j.checkTook == nil {
		j.checkTook = make([]time.Duration, j.n)
	}
	defer func() { j.checkTook[r] = time.Since(t0) }()
	if ok, _ := j.lazyMode(); !ok || m.MemSize == 0 {
		return j.store.Verify(m)
	}
	files := *m
	files.Chunks = nil
	if err := j.store.Verify(&files); err != nil {
		return err
	}
	j.spawnFiller(r)
	lm, err := j.lazyPlaces(m)
	if err != nil {
		return err
	}
	j.dropLazy(r)
	j.lazyMem[r], j.lazyFor[r] = lm, m
	return nil
}

// spawnFillers spawns a filler process for each rank of a resume that
// restores lazily, as soon as the resume is known (before the store is
// opened and the epoch chosen): the guest's first touch waits until its
// filler runs, and Restore until it is spawned, which on a loaded machine
// takes longer than all of the check.
func (j *jobRun) spawnFillers() {
	if ok, _ := j.lazyMode(); ok {
		for r := range j.n {
			j.spawnFiller(r)
		}
	}
}

// spawnFiller spawns rank r's filler unless it has one; Restore takes it
// (without one, Restore starts one).
func (j *jobRun) spawnFiller(r int) {
	if j.lazyMem == nil {
		j.lazyMem = make([]*host.LazyMemory, j.n)
		j.fillers = make([]chan *lazy.Filler, j.n)
		j.lazyFor = make([]*ckpt.Manifest, j.n)
	}
	if j.fillers[r] == nil {
		ch := make(chan *lazy.Filler, 1)
		go func() {
			fl, _ := lazy.Spawn()
			ch <- fl
		}()
		j.fillers[r] = ch
	}
}

// lazyPlaces returns where a lazy restore of m reads its chunks from: a
// snapshot of the index pinned for the filler, which finds each chunk's
// place as it goes, or, where the index cannot be pinned, every chunk's
// place found now.
func (j *jobRun) lazyPlaces(m *ckpt.Manifest) (*host.LazyMemory, error) {
	pin, err := j.store.PinIndex(m)
	if err != nil {
		return nil, err
	}
	lm := &host.LazyMemory{ChunkSize: int(m.ChunkSize), SegmentPath: j.store.SegmentPath}
	if pin != nil {
		lm.Index, lm.Hashes, lm.Release = &pin.Snapshot, m.Chunks, pin.Release
		return lm, nil
	}
	if lm.Chunks, err = j.store.MemorySources(m); err != nil {
		return nil, err
	}
	return lm, nil
}

// dropLazy releases what rank r's check made ready for a lazy restore
// that will not happen (its filler stays for the next check).
func (j *jobRun) dropLazy(r int) {
	if r < len(j.lazyMem) && j.lazyMem[r] != nil {
		if j.lazyMem[r].Release != nil {
			j.lazyMem[r].Release()
		}
		j.lazyMem[r], j.lazyFor[r] = nil, nil
	}
}

// lazyState returns what restores rank's memory lazily from m, nil if it
// is restored eagerly.
func (j *jobRun) lazyState(rank int, m *ckpt.Manifest) *host.LazyMemory {
	if j.lazyMarked {
		// The resume that checked every chunk up front has chosen.
		_ = os.Remove(j.lazyMark())
		j.lazyMarked = false
	}
	if rank >= len(j.lazyMem) || j.lazyMem[rank] == nil || j.lazyFor[rank] != m {
		j.dropLazy(rank)
		return nil // not checked for a lazy restore: read up front
	}
	lm, filler := j.lazyMem[rank], <-j.fillers[rank]
	j.lazyMem[rank], j.lazyFor[rank], j.fillers[rank] = nil, nil, nil
	lm.Filler = filler
	lm.ChunkErr = func(i int) error {
		err := j.store.ChunkErr(m, i)
		if werr := os.WriteFile(j.lazyMark(), []byte(strconv.FormatUint(m.Epoch, 10)+"\n"), 0o644); werr != nil {
			j.logf("warning: %v: the next resume may find the damaged chunk late again", werr)
		}
		j.refuse(m.Epoch)
		return err
	}
	if j.cfg.Verbose {
		check := j.checkTook[rank]
		lm.OnResident = func(d time.Duration, f host.LazyFiller) { j.logResident(rank, m, check+d, f) }
	}
	return lm
}

// lazyAdopted returns what restores the memory of a rank that moved here
// lazily from m, the state of its migration key it is adopted from, or
// nil if this host restores eagerly. resident is called once every chunk
// is in: the key's chunks are read until then. A chunk that does not
// read back ends the rank, as an eager read of it would: the state is not
// a checkpoint of the job's, no epoch is refused for it.
func (j *jobRun) lazyAdopted(rank int, m *ckpt.Manifest, resident func()) *host.LazyMemory {
	if ok, _ := j.lazyMode(); !ok || m.MemSize == 0 {
		return nil
	}
	lm, err := j.lazyPlaces(m)
	if err != nil {
		return nil // read whole, which says what is wrong
	}
	lm.ChunkErr = func(i int) error { return j.store.ChunkErr(m, i) }
	lm.OnResident = func(d time.Duration, f host.LazyFiller) {
		if j.cfg.Verbose {
			j.logResident(rank, m, d, f)
		}
		resident()
	}
	return lm
}

// logResident says that rank's memory, restored lazily from m, is all
// in, d after its restore began.
func (j *jobRun) logResident(rank int, m *ckpt.Manifest, d time.Duration, f host.LazyFiller) {
	j.logf("%smemory restored lazily: all %s resident %s after the restore began (filler ready after %s, peak %s)",
		j.who(rank), host.FormatBytes(m.MemSize), d.Round(time.Millisecond), ms3(f.Ready), host.FormatBytes(f.Peak))
}

// logRestore says, in a verbose run, how rank's memory was restored and
// how long after the restore began (its check, then Restore, which took
// took) the guest may run.
func (j *jobRun) logRestore(rank int, w *host.Worker, took time.Duration) {
	if !j.cfg.Verbose {
		return
	}
	var check time.Duration
	if rank < len(j.checkTook) {
		check = j.checkTook[rank]
	}
	lazy, why := w.LazyRestore()
	if lazy {
		j.logf("%srestore: lazy: the guest runs %s after the restore began (check %s, memory mapped %s), while its memory is read",
			j.who(rank), ms3(check+took), ms3(check), ms3(took))
		return
	}
	reason := "not asked for"
	if ok, w := j.lazyMode(); !ok {
		reason = w
	} else if why != nil {
		reason = why.Error()
	}
	j.logf("%srestore: eager (%s): the guest runs %s after the restore began (check %s, memory read %s)",
		j.who(rank), reason, ms3(check+took), ms3(check), ms3(took))
}

// ms3 is d in milliseconds, to the microsecond.
func ms3(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// closeFillers ends the fillers spawned, and releases the index pinned,
// for restores that did not happen.
func (j *jobRun) closeFillers() {
	for r := range j.lazyMem {
		j.dropLazy(r)
	}
	for r, ch := range j.fillers {
		if ch != nil {
			if fl := <-ch; fl != nil {
				fl.Close()
			}
			j.fillers[r] = nil
		}
	}
}
