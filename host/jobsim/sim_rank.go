package jobsim

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/librahost/librahost/transport"
)

// prog is a rank's program state: at step k it sends one message to rank
// r+d and receives the one rank r-d sent at its step k (d = 1 + k mod
// (n-1)), folds it into acc, appends a line to its file and prints it.
type prog struct {
	k    int
	acc  uint64
	sent bool // the message of step k is sent
}

func mix(a, b uint64) uint64 {
	a ^= b + 0x9e3779b97f4a7c15 + a<<6 + a>>2
	a *= 0xbf58476d1ce4e5b9
	return a ^ a>>31
}

func payloadOf(acc uint64, r, k int) []byte {
	return binary.LittleEndian.AppendUint64(nil, mix(acc, uint64(r)<<32|uint64(k)))
}

func lineOf(r, k int, acc uint64) string { return fmt.Sprintf("rank %d step %d %016x", r, k, acc) }

func peers(r, k, n int) (dst, src int) {
	d := 1 + k%(n-1)
	return (r + d) % n, (r - d + n) % n
}

// reference runs the programs without a network: the output each rank
// prints (and writes to its file) in a run without failures, and the
// payload of each rank's message at each step.
func reference(ranks, steps int) (lines [][]string, payloads [][][]byte) {
	acc := make([]uint64, ranks)
	lines = make([][]string, ranks)
	payloads = make([][][]byte, ranks)
	for k := range steps {
		for r := range ranks {
			payloads[r] = append(payloads[r], payloadOf(acc[r], r, k))
		}
		for r := range ranks {
			_, src := peers(r, k, ranks)
			acc[r] = mix(acc[r], binary.LittleEndian.Uint64(payloads[src][k]))
			lines[r] = append(lines[r], lineOf(r, k, acc[r]))
		}
	}
	return lines, payloads
}

// rank is a rank running on a host.
type rank struct {
	id      int
	prog    prog
	epoch   uint64 // newest epoch captured (or rolled back to)
	want    uint64 // newest epoch asked for
	senders []*transport.Sender
	recvs   []*transport.Receiver
	inbox   []transport.Frame // delivered, not yet consumed
	file    []string
	ended   bool
	running bool  // false while the job recovers
	halt    bool  // its migration asks it to stop at its next capture point
	frozen  bool  // stopped there: its last state is on its way
	left    bool  // its last state was taken: its acks claim nothing of its cuts (Frame.Cut)
	dirty   int64 // bytes its program wrote since the current pre-copy round began
}

// snapshot is a rank's checkpoint of an epoch, or the last state of its
// migration.
type snapshot struct {
	rank    int
	epoch   uint64
	prog    prog
	senders []transport.SenderState
	recvs   []transport.ReceiverState
	inbox   []transport.Frame
	file    []string
	ended   bool
}

func newRank(id, n int) *rank {
	r := &rank{id: id, senders: make([]*transport.Sender, n), recvs: make([]*transport.Receiver, n)}
	for o := range n {
		r.senders[o] = transport.NewSender(uint32(id), uint32(o), transport.SenderConfig{RetransmitAfter: 300 * time.Millisecond, MaxRetransmitAfter: time.Second})
		r.recvs[o] = transport.NewReceiver(uint32(o), uint32(id), transport.ReceiverConfig{})
	}
	return r
}

// snapshot takes rank r's checkpoint of epoch e, its cut (cut), or the
// last state of its migration, in epoch e.
func (r *rank) snapshot(e uint64, cut bool) *snapshot {
	s := &snapshot{rank: r.id, epoch: e, prog: r.prog, inbox: append([]transport.Frame(nil), r.inbox...),
		file: append([]string(nil), r.file...), ended: r.ended}
	for o := range r.senders {
		st := r.senders[o].State()
		if cut {
			st = r.senders[o].CutState(e)
		}
		s.senders = append(s.senders, st)
		s.recvs = append(s.recvs, r.recvs[o].State())
	}
	return s
}

// restore makes a rank from its checkpoint (or its start, if s is nil).
func restore(id, n int, s *snapshot) (*rank, error) {
	r := newRank(id, n)
	if s == nil {
		return r, nil
	}
	r.prog, r.epoch, r.want, r.ended = s.prog, s.epoch, s.epoch, s.ended
	r.inbox = append([]transport.Frame(nil), s.inbox...)
	r.file = append([]string(nil), s.file...)
	for o := range n {
		st := s.senders[o]
		st.Entries = append([]transport.Entry(nil), st.Entries...)
		if err := r.senders[o].Restore(st); err != nil {
			return nil, err
		}
		if err := r.recvs[o].Restore(s.recvs[o]); err != nil {
			return nil, err
		}
	}
	return r, nil
}
