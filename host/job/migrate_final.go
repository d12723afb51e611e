package job

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/librahost/librahost/host"
)

// The last state of a migrating rank, sent straight from its source's
// memory to its target's worker made ahead (migrate_stage.go): the
// chunks written since the pre-copy round the target holds (the union of
// the write tracking's ranges of every capture since that round's),
// globals and host state. Nothing of it touches a disk on either side:
// the downtime is the capture, this message, and the route change. If
// the target dies after taking it, the job rolls back to its committed
// epoch as for any host's loss (proto_migrate.go), so the state need not
// be durable there. Where the writes since the round are not known (the
// tracking was off, or no round reached the target: stop-and-copy), the
// state goes through the stores as a round does (sendState).

// FinalState is a migrating rank's last state (Mover.Final).
type FinalState struct {
	Rank      int
	Base      uint64 // the pre-copy round the target's worker holds
	MemSize   uint64
	ChunkSize uint32
	Globals   []uint64
	Host      []byte // the rankCheckpoint, JSON
	Chunks    []FinalChunk
	// Files is the rank's file history (migrate_files.go): the file
	// deltas from the start to its stop, laid end to end.
	Files []byte
}

// FinalChunk is a chunk of memory written since the base round.
type FinalChunk struct {
	Index uint32
	Data  []byte // ChunkSize bytes, fewer for the last chunk of memory
}

const finalMagic = "LHF2" // LHF1 had no Files

// maxFinal bounds the memory and files a FinalState carries; beyond it
// the state goes through the stores.
const maxFinal = 256 << 20

// AppendFinal appends fs's encoding to b.
func AppendFinal(b []byte, fs *FinalState) []byte {
	b = append(b, finalMagic...)
	b = binary.AppendUvarint(b, uint64(fs.Rank))
	b = binary.AppendUvarint(b, fs.Base)
	b = binary.AppendUvarint(b, fs.MemSize)
	b = binary.AppendUvarint(b, uint64(fs.ChunkSize))
	b = binary.AppendUvarint(b, uint64(len(fs.Globals)))
	for _, g := range fs.Globals {
		b = binary.LittleEndian.AppendUint64(b, g)
	}
	b = binary.AppendUvarint(b, uint64(len(fs.Host)))
	b = append(b, fs.Host...)
	b = binary.AppendUvarint(b, uint64(len(fs.Chunks)))
	for _, c := range fs.Chunks {
		// S2-compressed: the wire, not the CPU, is most of a large last
		// delta's time (QUIC on loopback moves 50–150 MB/s here).
		z := s2.Encode(nil, c.Data)
		b = binary.AppendUvarint(b, uint64(c.Index))
		b = binary.AppendUvarint(b, uint64(len(c.Data)))
		b = binary.AppendUvarint(b, uint64(len(z)))
		b = append(b, z...)
	}
	b = binary.AppendUvarint(b, uint64(len(fs.Files)))
	return append(b, fs.Files...)
}

var errFinal = errors.New("job: a migrating rank's last state is damaged")

// DecodeFinal decodes AppendFinal's encoding.
func DecodeFinal(b []byte) (*FinalState, error) {
	if len(b) < len(finalMagic) || string(b[:len(finalMagic)]) != finalMagic {
		return nil, fmt.Errorf("%w: not one (no magic)", errFinal)
	}
	b = b[len(finalMagic):]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	bytes := func(n uint64) []byte {
		if bad || n > uint64(len(b)) {
			bad = true
			return nil
		}
		v := b[:n:n]
		b = b[n:]
		return v
	}
	fs := &FinalState{}
	fs.Rank = int(uv() & 0xffffffff)
	fs.Base, fs.MemSize = uv(), uv()
	cs := uv()
	if bad || cs == 0 || cs > 64<<20 || fs.MemSize%65536 != 0 || fs.MemSize > 1<<32 {
		return nil, fmt.Errorf("%w: its memory size or chunk size is out of range", errFinal)
	}
	fs.ChunkSize = uint32(cs)
	ng := uv()
	if bad || ng > uint64(len(b))/8 {
		return nil, fmt.Errorf("%w: truncated in its globals", errFinal)
	}
	fs.Globals = make([]uint64, ng)
	for i := range fs.Globals {
		fs.Globals[i] = binary.LittleEndian.Uint64(bytes(8))
	}
	fs.Host = bytes(uv())
	nc := uv()
	if bad || nc > uint64(len(b)) {
		return nil, fmt.Errorf("%w: truncated in its host state", errFinal)
	}
	chunks := (fs.MemSize + cs - 1) / cs
	for range nc {
		i, n := uv(), uv()
		if bad || i >= chunks || n != min(cs, fs.MemSize-i*cs) {
			return nil, fmt.Errorf("%w: a chunk is out of its memory", errFinal)
		}
		z := bytes(uv())
		if l, err := s2.DecodedLen(z); bad || err != nil || uint64(l) != n {
			return nil, fmt.Errorf("%w: a chunk does not decode to its size", errFinal)
		}
		data, err := s2.Decode(make([]byte, n), z)
		if err != nil {
			return nil, fmt.Errorf("%w: a chunk does not decode (%v)", errFinal, err)
		}
		fs.Chunks = append(fs.Chunks, FinalChunk{Index: uint32(i), Data: data})
	}
	if nf := uv(); !bad && nf > 0 {
		fs.Files = bytes(nf)
	}
	if bad || len(b) != 0 {
		return nil, fmt.Errorf("%w: truncated or with bytes after its end", errFinal)
	}
	return fs, nil
}

// finalChunks returns the chunks of the final capture c (its guest
// stopped) that were written (by chunk of cs bytes); false if they are
// more than limit bytes.
func finalChunks(c *host.Capture, written []bool, cs, limit int) ([]FinalChunk, bool) {
	n := 0
	for _, w := range written {
		if w {
			n++
		}
	}
	if n*cs > limit {
		return nil, false
	}
	fr := c.Dirty.Frozen // nil: c.Memory is the stopped guest's memory
	if fr != nil {
		fr.Need(cs, written)
		defer fr.Done()
	}
	out := make([]FinalChunk, 0, n)
	for i, w := range written {
		if !w {
			continue
		}
		var data []byte
		if fr != nil {
			data = fr.Read(nil, i, cs)
		} else {
			off := i * cs
			data = append([]byte(nil), c.Memory[off:min(off+cs, len(c.Memory))]...)
		}
		out = append(out, FinalChunk{Index: uint32(i), Data: data})
	}
	return out, true
}

// finalState makes the last state of rank, stopped at c, to send to its
// target straight; nil if its writes since round base are not known.
func (r *shareRun) finalState(rank int, mg *outMig, rc *rankCheckpoint, c *host.Capture, files []byte, base uint64) (*FinalState, error) {
	if base == 0 || c == nil || c.Dirty == nil || r.s.Mover.Final == nil {
		return nil, nil
	}
	r.mu.Lock()
	written, ok := mg.chain.since(int(base), len(c.Memory), migChunk)
	r.mu.Unlock()
	if !ok {
		return nil, nil
	}
	chunks, ok := finalChunks(c, written, migChunk, maxFinal-len(files))
	if !ok {
		return nil, nil
	}
	if err := r.channelState(rank, rc); err != nil {
		return nil, err
	}
	hs, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	return &FinalState{Rank: rank, Base: base, MemSize: uint64(len(c.Memory)), ChunkSize: migChunk,
		Globals: c.Globals, Host: hs, Chunks: chunks, Files: files}, nil
}

// dirtyChain is what the write tracking said of each capture of a
// migrating rank since the oldest pre-copy round its target may hold.
type dirtyChain struct {
	caps []chainCap
}

type chainCap struct {
	round  int // the pre-copy round it was taken for; 0: another capture
	size   int // the memory's size
	since  uint64
	mark   uint64 // 0: not tracked
	ranges [][2]uint64
}

// note records capture c, taken for pre-copy round round (0: another).
func (ch *dirtyChain) note(c *host.Capture, round int) {
	cp := chainCap{round: round, size: len(c.Memory)}
	if d := c.Dirty; d != nil {
		cp.since, cp.mark, cp.ranges = d.Since, d.Mark, d.Ranges
	}
	ch.caps = append(ch.caps, cp)
}

// held drops what was noted before round's capture: the target holds it.
func (ch *dirtyChain) held(round int) {
	for i, cp := range ch.caps {
		if cp.round == round {
			ch.caps = ch.caps[i:]
			return
		}
	}
}

// since returns, by chunk of cs bytes of a memory of size bytes, what was
// written since round's capture, up to the last capture noted; false if
// a capture between was not tracked or round's capture is not noted.
func (ch *dirtyChain) since(round, size, cs int) ([]bool, bool) {
	at := -1
	for i, cp := range ch.caps {
		if cp.round == round {
			at = i
		}
	}
	if at < 0 || at == len(ch.caps)-1 || ch.caps[at].mark == 0 {
		return nil, false
	}
	n := (size + cs - 1) / cs
	written := make([]bool, n)
	for i := ch.caps[at].size / cs; i < n; i++ { // grown since
		written[i] = true
	}
	prev := ch.caps[at].mark
	for _, cp := range ch.caps[at+1:] {
		if cp.mark == 0 || cp.since != prev {
			return nil, false
		}
		prev = cp.mark
		for _, r := range cp.ranges {
			if r[1] <= r[0] {
				continue
			}
			for i := r[0] / uint64(cs); i <= (r[1]-1)/uint64(cs) && i < uint64(n); i++ {
				written[i] = true
			}
		}
	}
	return written, true
}
