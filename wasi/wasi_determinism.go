package wasi

import (
	"encoding/binary"
	"math/rand/v2"
)

// Deterministic mode (Config.Deterministic): the guest's clocks are
// virtual and its random bytes come from Config.Seed, so a run can be
// replayed exactly. The monotonic clock starts at 0 and advances by
// detStep at every read; the real-time clock reads detEpoch plus the
// monotonic clock. A poll_oneoff that would sleep does not: the monotonic
// clock jumps to its earliest deadline and the poll returns at once.
// random_get reads a ChaCha8 stream seeded by Config.Seed. The clock and
// the stream's position are checkpoint state (Snapshot, Restore).
const (
	detStep  = 1000                    // ns per clock read
	detEpoch = 1577836800 * 1000000000 // 2020-01-01T00:00:00Z in ns
)

type determinism struct {
	mono int64
	rng  *rand.ChaCha8
}

func newDeterminism(seed uint64) *determinism {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &determinism{rng: rand.NewChaCha8(key)}
}

func (d *determinism) nanotime() int64 {
	d.mono += detStep
	return d.mono
}

func (d *determinism) walltime() (int64, int32) {
	t := detEpoch + d.nanotime()
	return t / 1e9, int32(t % 1e9)
}

// sleepUntil advances the monotonic clock to deadline instead of sleeping.
func (d *determinism) sleepUntil(deadline int64) {
	d.mono = max(d.mono, deadline)
}

func (d *determinism) Read(p []byte) (int, error) {
	return d.rng.Read(p)
}

// appendState appends the clock and the random stream's state.
func (d *determinism) appendState(b []byte) []byte {
	b = binary.AppendVarint(b, d.mono)
	st, _ := d.rng.MarshalBinary()
	return appendString(b, string(st))
}

func (d *determinism) setState(mono int64, rng []byte) error {
	r := new(rand.ChaCha8)
	if err := r.UnmarshalBinary(rng); err != nil {
		return err
	}
	d.mono, d.rng = mono, r
	return nil
}
