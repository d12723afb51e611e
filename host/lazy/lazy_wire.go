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
//	magic u32, base u64, size u64, chunkSize u32, hold u32, nseg u32, nsrc u32, nhash u32
//	nseg × (seg u32, len u16, path)
//	nsrc × (index u32, hash [16], seg u32, off u64, size u64, len u32, value)
//	if nhash > 0: pageSize u32, pages u64, refs u64, len u16, index path, len u16, segment directory
//
// With nhash > 0 the chunks' places are found in that snapshot of the
// index (ckpt.IndexSnapshot) as they are filled, and the chunks' hashes,
// nhash × [16] by chunk, are in the flag's memfd from its second page on:
// written there, not on the pipe, Start need not wait for the filler to
// read them.
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
	nhash      uint32              // chunks whose hashes are in the flag's memfd
	index      *ckpt.IndexSnapshot // set iff nhash > 0
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
	le.PutUint32(b[36:], p.nhash)
	bw.Write(b[:40])
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
	if p.nhash > 0 {
		ix := p.index
		le.PutUint32(b[0:], ix.PageSize)
		le.PutUint64(b[4:], ix.Pages)
		le.PutUint64(b[12:], ix.Refs)
		bw.Write(b[:20])
		for _, path := range []string{ix.Path, ix.SegDir} {
			le.PutUint16(b[0:], uint16(len(path)))
			bw.Write(b[:2])
			bw.WriteString(path)
		}
	}
	return bw.Flush()
}

func readPlan(r io.Reader) (*plan, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var b [64]byte
	le := binary.LittleEndian
	if _, err := io.ReadFull(br, b[:40]); err != nil {
		return nil, err
	}
	if le.Uint32(b[0:]) != wireMagic {
		return nil, errors.New("lazy: not a fill plan")
	}
	p := &plan{base: le.Uint64(b[4:]), size: le.Uint64(b[12:]), chunkSize: le.Uint32(b[20:]), hold: le.Uint32(b[24:]), segs: map[uint32]string{}}
	nseg, nsrc := le.Uint32(b[28:]), le.Uint32(b[32:])
	p.nhash = le.Uint32(b[36:])
	// A wasm32 memory is at most 4 GiB, in chunks of at least a page:
	// what is allocated for the chunks stays bounded.
	if p.chunkSize < 4096 || p.size > 1<<32 || uint64(nsrc) > p.size/uint64(p.chunkSize)+1 || uint64(p.nhash) > p.size/uint64(p.chunkSize)+1 {
		return nil, fmt.Errorf("lazy: a plan of %d and %d chunks for %d bytes", nsrc, p.nhash, p.size)
	}
	str := func() (string, error) {
		if _, err := io.ReadFull(br, b[:2]); err != nil {
			return "", err
		}
		s := make([]byte, le.Uint16(b[0:]))
		_, err := io.ReadFull(br, s)
		return string(s), err
	}
	for range nseg {
		if _, err := io.ReadFull(br, b[:4]); err != nil {
			return nil, err
		}
		seg := le.Uint32(b[0:])
		path, err := str()
		if err != nil {
			return nil, err
		}
		p.segs[seg] = path
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
	if p.nhash > 0 {
		if _, err := io.ReadFull(br, b[:20]); err != nil {
			return nil, err
		}
		ix := &ckpt.IndexSnapshot{PageSize: le.Uint32(b[0:]), Pages: le.Uint64(b[4:]), Refs: le.Uint64(b[12:])}
		var err error
		if ix.Path, err = str(); err != nil {
			return nil, err
		}
		if ix.SegDir, err = str(); err != nil {
			return nil, err
		}
		p.index = ix
	}
	return p, nil
}
