package lazy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/librahost/librahost/ckpt"
)

// What the guest's process tells the filler (its fd 4), once, at the
// start; all integers little-endian:
//
//	magic u32, base u64, size u64, chunkSize u32, hold u32, nseg u32, nsrc u32
//	nseg × (seg u32, len u16, path)
//	nsrc × (index u32, hash [16], seg u32, off u64, size u64, len u32, value)
//
// The filler answers on its fd 5 with lines: "done" once every non-zero
// chunk is in, or "bad INDEX MESSAGE" for a chunk that does not read back.
const wireMagic = 0x4c415a59 // "LAZY"

// plan is what the filler is told.
type plan struct {
	base, size uint64
	chunkSize  uint32
	hold       uint32 // the background reader stops after this many chunks until holdPath exists (tests); 0: never
	segs       map[uint32]string
	srcs       []ckpt.ChunkSource
}

func (p *plan) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var b [64]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], wireMagic)
	le.PutUint64(b[4:], p.base)
	le.PutUint64(b[12:], p.size)
	le.PutUint32(b[20:], p.chunkSize)
	le.PutUint32(b[24:], p.hold)
	le.PutUint32(b[28:], uint32(len(p.segs)))
	le.PutUint32(b[32:], uint32(len(p.srcs)))
	bw.Write(b[:36])
	for seg, path := range p.segs {
		le.PutUint32(b[0:], seg)
		le.PutUint16(b[4:], uint16(len(path)))
		bw.Write(b[:6])
		bw.WriteString(path)
	}
	for _, s := range p.srcs {
		le.PutUint32(b[0:], s.Index)
		copy(b[4:20], s.Hash[:])
		le.PutUint32(b[20:], s.Seg)
		le.PutUint64(b[24:], s.Off)
		le.PutUint64(b[32:], s.Size)
		le.PutUint32(b[40:], uint32(len(s.Value)))
		bw.Write(b[:44])
		bw.Write(s.Value)
	}
	return bw.Flush()
}

func readPlan(r io.Reader) (*plan, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var b [64]byte
	le := binary.LittleEndian
	if _, err := io.ReadFull(br, b[:36]); err != nil {
		return nil, err
	}
	if le.Uint32(b[0:]) != wireMagic {
		return nil, errors.New("lazy: not a fill plan")
	}
	p := &plan{base: le.Uint64(b[4:]), size: le.Uint64(b[12:]), chunkSize: le.Uint32(b[20:]), hold: le.Uint32(b[24:]), segs: map[uint32]string{}}
	nseg, nsrc := le.Uint32(b[28:]), le.Uint32(b[32:])
	if p.chunkSize == 0 || uint64(nsrc) > p.size/uint64(p.chunkSize)+1 {
		return nil, fmt.Errorf("lazy: a plan of %d chunks for %d bytes", nsrc, p.size)
	}
	for range nseg {
		if _, err := io.ReadFull(br, b[:6]); err != nil {
			return nil, err
		}
		path := make([]byte, le.Uint16(b[4:]))
		if _, err := io.ReadFull(br, path); err != nil {
			return nil, err
		}
		p.segs[le.Uint32(b[0:])] = string(path)
	}
	p.srcs = make([]ckpt.ChunkSource, nsrc)
	for i := range p.srcs {
		if _, err := io.ReadFull(br, b[:44]); err != nil {
			return nil, err
		}
		s := &p.srcs[i]
		s.Index = le.Uint32(b[0:])
		copy(s.Hash[:], b[4:20])
		s.Seg, s.Off, s.Size = le.Uint32(b[20:]), le.Uint64(b[24:]), le.Uint64(b[32:])
		if n := le.Uint32(b[40:]); n > 0 {
			if n > 64<<20 {
				return nil, fmt.Errorf("lazy: a value of %d bytes", n)
			}
			s.Value = make([]byte, n)
			if _, err := io.ReadFull(br, s.Value); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}
