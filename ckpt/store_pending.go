package ckpt

import (
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Pending is a capture on its way to the store.
type Pending struct {
	s     *Store
	base  *baseState // what the capture was compared against
	m     *Manifest  // complete except StoredBytes and Stats.BytesStored/WriteDur
	jobs  []chunkJob
	total int64 // bytes the capture covers: memory, and the file blob if chunked

	captured     time.Time
	compressed   chan struct{} // closed when every job has its value
	compressedFn func()        // called just before compressed is closed
	ready        chan int      // indexes of jobs that have their value
	done         chan struct{} // closed when durable or failed

	progress atomic.Int64
	stats    Stats         // pause-side figures, fixed once Capture returns (once scanned is closed)
	early    Stats         // for a copy-on-write capture: the figures known when Capture returned
	scanned  chan struct{} // for a copy-on-write capture: closed once jobs and stats are set
	locs     []chunkLoc    // where the writer put each job's value; seg 0 if not yet
	stored   int64         // written by the writer
	garbage  []chunkLoc    // chunk values the commit left to free (freeValues)
	stream   *valueStream  // for a copy-on-write capture: how its values reach the writer as they are made
	// baseSet is the chunks of baseSetOf, the key's newest durable capture
	// when a batch last looked (dropStored); writer-owned.
	baseSet   map[Hash]struct{}
	baseSetOf *baseState
	foreign   bool // the values are the caller's (AddReplica), not the pool's
	// hostLater is Meta.HostLater, called by the writer before the commit.
	hostLater func() ([]byte, error)
	rep       *repWriter // a replica's values, already in the replica segment
	final     Stats      // set before done is closed
	err       error      // set before done is closed
}

// Done is closed when the checkpoint is durable or has failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err is nil if the checkpoint is durable; call it after Done.
func (p *Pending) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Wait blocks until the checkpoint is durable or has failed.
func (p *Pending) Wait() error {
	<-p.done
	return p.err
}

// Stats describes the capture. BytesStored and WriteDur are known after Done.
func (p *Pending) Stats() Stats {
	select {
	case <-p.done:
		return p.final
	default:
	}
	if p.scanned != nil {
		select {
		case <-p.scanned:
		default:
			return p.early
		}
	}
	return p.stats
}

// Progress reports how many bytes of the guest's memory (and of its file
// blob, when that is stored as chunks) have been processed, out of all of
// them. A chunk counts as processed once it is compressed, or at once if it
// is skipped: zero, unchanged since the base epoch, or a copy of another.
// done equals total only once the checkpoint is durable.
func (p *Pending) Progress() (done, total int64) {
	total = p.total
	select {
	case <-p.done:
		return total, total
	default:
	}
	done = p.progress.Load()
	if done >= total {
		done = max(total-1, 0)
	}
	return done, total
}

// Key and Epoch identify the checkpoint.
func (p *Pending) Key() Key      { return p.m.Key }
func (p *Pending) Epoch() uint64 { return p.m.Epoch }

// startCompress encodes the capture's chunks on cfg.Workers goroutines;
// the shared encoder bounds how many run at once across captures. (A
// copy-on-write capture's are encoded by its scan: scanFrozen.)
func (s *Store) startCompress(p *Pending) {
	if len(p.jobs) == 0 {
		p.endCompress()
		return
	}
	var next atomic.Int64
	w := min(s.cfg.Workers, len(p.jobs))
	var running atomic.Int32
	running.Store(int32(w))
	for range w {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(p.jobs) {
					break
				}
				j := &p.jobs[i]
				s.encodeJob(j)
				p.progress.Add(int64(j.raw))
				p.ready <- i
			}
			if running.Add(-1) == 0 {
				p.endCompress()
			}
		}()
	}
}

// encodeJob encodes j's chunk, copied into j.buf, into a pool buffer
// (j.buf itself, or the other one goes back to the pool).
func (s *Store) encodeJob(j *chunkJob) {
	j.raw = j.rawLen()
	out := s.bufs.get()
	value, usedBuf := encodeChunk(s.enc, j.buf, out)
	if usedBuf {
		s.bufs.put(out)
	} else {
		s.bufs.put(j.buf)
	}
	j.value, j.buf = value, nil
}

// endCompress says that every job has its value: a copy-on-write
// snapshot the jobs were read from is done with first (before the capture
// can be durable).
func (p *Pending) endCompress() {
	if p.compressedFn != nil {
		p.compressedFn()
	}
	close(p.compressed)
}

// writer is the one goroutine that writes captures, in the order they were
// taken.
func (s *Store) writer() {
	defer close(s.writerDone)
	for p := range s.writeq {
		err := s.writeChunks(p)
		if p.scanned != nil {
			<-p.scanned // the manifest's hashes and the stats are set
		}
		switch {
		case err != nil:
			<-p.compressed // the compressors still own the jobs
			err = s.writeErr(p.m, err)
		case p.hostLater != nil:
			s.outside(true)
			p.m.Host, err = p.hostLater()
			s.outside(false)
			if err != nil {
				err = s.writeErr(p.m, err)
				break
			}
			fallthrough
		default:
			err = s.commit(p)
		}
		if err != nil {
			s.segs.rollback()
			s.keyState(p.m.Key).dropScan()
		}
		s.unpin(p)
		p.final = p.stats
		p.final.WriteDur = time.Since(p.captured)
		if err == nil {
			p.final.BytesStored = p.stored
		}
		if !p.foreign {
			// The compressors are done: every value left, written or not,
			// goes back.
			for i := range p.jobs {
				if j := &p.jobs[i]; j.slab != nil {
					s.unref(j.slab)
				} else {
					s.bufs.put(j.value)
				}
			}
		}
		p.jobs, p.locs, p.stream = nil, nil, nil
		p.err = err
		garbage := append(s.garbage, p.garbage...)
		p.garbage = nil
		s.gcMu.Lock()
		close(p.done)
		s.garbage = s.freeValues(garbage)
		if err == nil {
			s.scrubStep(p.m.Key)
		}
		s.gcMu.Unlock()
	}
}

// freeValues frees the values of chunks that a commit left unreferenced,
// once the checkpoint is durable, so that a checkpoint does not wait for
// the old epochs it replaces to be freed: values in the chunks bucket in a
// transaction of its own, values in segments by the puncher. It
// returns what it could not free, for the next try; a crash leaves them to
// Open (sweepOrphans, openSegments).
func (s *Store) freeValues(locs []chunkLoc) []chunkLoc {
	if len(locs) == 0 {
		return nil
	}
	if err := fail("free:tx"); err != nil {
		return locs
	}
	var inBolt, inSegs []chunkLoc
	for _, l := range locs {
		if l.seg == 0 {
			inBolt = append(inBolt, l)
		} else {
			inSegs = append(inSegs, l)
		}
	}
	s.segs.freeLater(inSegs)
	if len(inBolt) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		for _, l := range inBolt {
			if err := deleteChunk(chunks, seqKey(l.seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return inBolt
	}
	return nil
}
