package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
)

// The target's making of a migrating rank's worker while the rank still
// runs at its source (migrate.go): at the first pre-copy round that
// arrives the module is compiled and the worker instantiated, and each
// round's memory is written into it as it arrives (only the chunks that
// differ from the round before), as CRIU's pre-copy does. So once the
// rank stops at its source only its last delta (the chunks written since
// the last round), globals and host state are left to apply here, and
// Adopt runs the worker made ahead.

// stagedRank is a rank's worker made here ahead of its adoption.
type stagedRank struct {
	mu sync.Mutex // held while a round is written into w
	w  *host.Worker
	m  *ckpt.Manifest // the state w's memory holds
	// unread: m is a last state that came with no round before it
	// (stop-and-copy), not written into w: the rank is stopped at its
	// source, so the adoption reads it, lazily where it can.
	unread bool
	err    error // staging failed: the adoption makes its worker anew
	gone   bool  // dropped: w is closed
	// final is the last state, written into w (FinalIn), at finalAt;
	// guarded by shareRun.mu.
	final   *FinalState
	finalAt time.Time
}

// StageGen is the generation of rank's moves here: DropStaged begins a
// new one. A round received is staged (MigrationIn) only if no drop came
// since its stream was accepted.
func (s *Share) StageGen(rank int) uint64 {
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	return s.stageGen[rank]
}

// MigrationIn tells the share that a state of rank's migration is durable
// in its store here (a pre-copy round, or the last state): its worker is
// made, or brought up to it, and MigrationIn returns once it is. Called
// again before the next round is taken, it keeps the rounds from running
// ahead of the worker, so that the last state does not wait for it. A
// state of a move dropped since gen (StageGen) was taken, whose cancel
// overtook a round in flight, makes no worker.
func (s *Share) MigrationIn(rank int, gen uint64) {
	r := s.run.Load()
	if r == nil {
		return
	}
	// A drop after stageMu is let go finds st in staged and marks it
	// gone, which stageNewest heeds.
	s.stageMu.Lock()
	if s.stageGen[rank] != gen {
		s.stageMu.Unlock()
		return
	}
	r.mu.Lock()
	r.migs.init()
	if r.migs.ctx == nil || r.migs.ctx.Err() != nil || r.migs.rc.Module == nil {
		r.mu.Unlock()
		s.stageMu.Unlock()
		return
	}
	ctx := r.migs.ctx
	st := r.migs.staged[rank]
	if st == nil {
		st = &stagedRank{}
		r.migs.staged[rank] = st
		context.AfterFunc(ctx, func() { // the share's run ended
			r.mu.Lock()
			if r.migs.staged[rank] == st {
				delete(r.migs.staged, rank)
			}
			r.mu.Unlock()
			st.drop()
		})
	}
	rc := r.stageConfig(rank)
	r.mu.Unlock()
	s.stageMu.Unlock()
	r.stageNewest(ctx, rank, st, rc)
}

// DropStaged drops rank's worker made ahead of its move here (its source
// cancelled the move, or a new one begins), and begins a new generation
// of its moves here (StageGen).
func (s *Share) DropStaged(rank int) {
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	if s.stageGen == nil {
		s.stageGen = map[int]uint64{}
	}
	s.stageGen[rank]++
	r := s.run.Load()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.dropStaged(rank)
	r.mu.Unlock()
}

// FinalIn writes a migrating rank's last state, sent straight from its
// source, into its worker made here ahead: the adoption then only sets
// its globals and host state and runs it. An error is one line.
func (s *Share) FinalIn(fs *FinalState) error {
	r := s.run.Load()
	if r == nil {
		return errors.New("the job is not running here")
	}
	r.mu.Lock()
	r.migs.init()
	st, ctx, rc := r.migs.staged[fs.Rank], r.migs.ctx, r.stageConfig(fs.Rank)
	r.mu.Unlock()
	if st == nil || ctx == nil {
		return fmt.Errorf("no worker of rank %d was made here ahead of its move", fs.Rank)
	}
	r.stageNewest(ctx, fs.Rank, st, rc) // the last round's may be behind
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.gone || st.w == nil || st.err != nil:
		return fmt.Errorf("the worker of rank %d made here ahead is gone (%v)", fs.Rank, st.err)
	case st.m == nil || st.unread || st.m.Epoch < fs.Base:
		// A later round than the base is fine: what was not written since
		// the base is the same in every capture after it.
		return fmt.Errorf("the worker of rank %d made here holds an older round than %d", fs.Rank, fs.Base)
	}
	cs := int(fs.ChunkSize)
	st.err = st.w.Stage(fs.MemSize, func(mem []byte) error {
		for _, c := range fs.Chunks {
			copy(mem[int(c.Index)*cs:], c.Data)
		}
		return nil
	})
	if st.err != nil {
		return st.err
	}
	r.mu.Lock()
	st.final, st.finalAt = fs, time.Now()
	r.mu.Unlock()
	return nil
}

// stageConfig is the configuration rank's worker is made with here. The
// caller holds r.mu.
func (r *shareRun) stageConfig(rank int) host.RanksConfig {
	rc := r.migs.rc
	rc.Ranks, rc.Stdin, rc.Endpoint = []int{rank}, nil, r.j.ep
	return rc
}

// stageNewest writes the newest state of rank's migration key into its
// worker here, made first if need be.
func (r *shareRun) stageNewest(ctx context.Context, rank int, st *stagedRank, rc host.RanksConfig) {
	j := r.j
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return
	}
	infos, err := j.store.Epochs(MigrationKey(rank))
	if err != nil || len(infos) == 0 {
		return
	}
	newest := slices.MaxFunc(infos, func(a, b ckpt.Info) int { return cmp.Compare(a.Epoch, b.Epoch) }).Epoch
	if st.m != nil && st.m.Epoch >= newest {
		return
	}
	m, err := j.store.Manifest(MigrationKey(rank), newest)
	switch {
	case err != nil:
		st.err = err
	case m.Binding != j.bind:
		st.err = fmt.Errorf("%w: its state was made by another build of the module", ckpt.ErrForeignModule)
	case m.MemSize == 0: // a rank whose program ended: nothing to make
		return
	}
	if st.err != nil {
		j.logf("rank %d: its worker could not be made ahead of its move here: %v", rank, st.err)
		st.err = nil
		return
	}
	if st.err == nil && st.w == nil {
		st.w, st.err = host.NewRankWorker(ctx, rc, rank)
	}
	if st.err == nil && st.m == nil && lastState(m, rank) {
		st.m, st.unread = m, true
		return
	}
	if st.err == nil {
		from := st.m
		if st.unread {
			from = nil // nothing of it was written into the worker
		}
		st.err = st.w.Stage(m.MemSize, func(mem []byte) error { return j.readDelta(from, m, mem) })
	}
	if st.err != nil {
		// Made again from the next round (a round read while a new
		// migration dropped the key, say).
		j.logf("rank %d: its worker could not be made ahead of its move here (%v): it is made again from the next round", rank, st.err)
		if st.w != nil {
			st.w.Close(context.Background())
		}
		st.w, st.m, st.err = nil, nil, nil
		return
	}
	st.m, st.unread = m, false
}

// lastState reports whether m, a state of rank's migration key, is its
// last state (the rank stopped at its source for it), not a round.
func lastState(m *ckpt.Manifest, rank int) bool {
	rc, _, err := decodeRankCheckpoint(m.Host, rank)
	return err == nil && rc.Stopped != 0
}

// take returns the worker made ahead and the state its memory holds (or,
// unread, is to hold), once no round is being written into it; nil if
// there is none. The caller owns the worker.
func (st *stagedRank) take() (w *host.Worker, m *ckpt.Manifest, unread bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	w, m = st.w, st.m
	st.w, st.gone = nil, true
	if w != nil && (st.err != nil || m == nil) {
		w.Close(context.Background())
		return nil, nil, false
	}
	return w, m, st.unread
}

// drop closes the worker made ahead, once no round is being written
// into it.
func (st *stagedRank) drop() {
	if w, _, _ := st.take(); w != nil {
		w.Close(context.Background())
	}
}

// dropStaged drops rank's worker made ahead. The caller holds r.mu.
func (r *shareRun) dropStaged(rank int) {
	if st := r.migs.staged[rank]; st != nil {
		delete(r.migs.staged, rank)
		go st.drop()
	}
}

// dropAllStaged drops every worker made ahead (a rollback, the share's
// end). The caller holds r.mu.
func (r *shareRun) dropAllStaged() {
	for rank := range r.migs.staged {
		r.dropStaged(rank)
	}
}

// readDelta writes into mem (the memory holding from's state; nil: zeroes)
// the chunks of m that differ from from's.
func (j *jobRun) readDelta(from, m *ckpt.Manifest, mem []byte) error {
	if from == nil || from.ChunkSize != m.ChunkSize {
		if from != nil {
			clear(mem)
		}
		return j.store.ReadMemory(m, mem)
	}
	sparse := *m
	sparse.Chunks = make([]ckpt.Hash, len(m.Chunks))
	cs := int(m.ChunkSize)
	for i, h := range m.Chunks {
		switch {
		case i < len(from.Chunks) && from.Chunks[i] == h:
		case h.IsZero():
			off := i * cs
			clear(mem[off:min(off+cs, len(mem))])
		default:
			sparse.Chunks[i] = h
		}
	}
	return j.store.ReadMemory(&sparse, mem)
}
