package transport

import (
	"encoding/binary"
	"fmt"
)

// A RankState encodes as
//
//	magic "LHRS" | version u8 | rank u32 | epoch u64
//	| sends: n, each dst u32 | next u64 | entries: n, each entry | queued: n, each entry
//	| recvs: n, each src u32 | delivered u64
//	| inbox: n, each src u32 | tag i32 | epoch u64 | seq u64 | payload
//
// with counts and payload lengths as uvarints, fixed fields little-endian,
// and an entry as seq u64 | epoch u64 | tag i32 | payload. It is stored
// inside a checkpoint, whose own checksum covers it.
const (
	rankStateMagic   = "LHRS"
	rankStateVersion = 1
)

// AppendRankState appends the encoding of st to b.
func AppendRankState(b []byte, st *RankState) []byte {
	le := binary.LittleEndian
	b = append(b, rankStateMagic...)
	b = append(b, rankStateVersion)
	b = le.AppendUint32(b, st.Rank)
	b = le.AppendUint64(b, st.Epoch)
	entry := func(b []byte, en *Entry) []byte {
		b = le.AppendUint64(b, en.Seq)
		b = le.AppendUint64(b, en.Epoch)
		b = le.AppendUint32(b, uint32(en.Tag))
		b = binary.AppendUvarint(b, uint64(len(en.Payload)))
		return append(b, en.Payload...)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Sends)))
	for i := range st.Sends {
		s := &st.Sends[i]
		b = le.AppendUint32(b, s.Dst)
		b = le.AppendUint64(b, s.Next)
		b = binary.AppendUvarint(b, uint64(len(s.Entries)))
		for j := range s.Entries {
			b = entry(b, &s.Entries[j])
		}
		b = binary.AppendUvarint(b, uint64(len(s.Queued)))
		for j := range s.Queued {
			b = entry(b, &s.Queued[j])
		}
	}
	b = binary.AppendUvarint(b, uint64(len(st.Recvs)))
	for _, r := range st.Recvs {
		b = le.AppendUint32(b, r.Src)
		b = le.AppendUint64(b, r.Delivered)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Inbox)))
	for _, m := range st.Inbox {
		b = le.AppendUint32(b, m.Src)
		b = le.AppendUint32(b, uint32(m.Tag))
		b = le.AppendUint64(b, m.Epoch)
		b = le.AppendUint64(b, m.Seq)
		b = binary.AppendUvarint(b, uint64(len(m.Data)))
		b = append(b, m.Data...)
	}
	return b
}

// DecodeRankState decodes what AppendRankState wrote. Payloads are copied.
func DecodeRankState(b []byte) (RankState, error) {
	d := stateDecoder{b: b}
	var st RankState
	if string(d.bytes(4)) != rankStateMagic {
		return st, fmt.Errorf("%w: not a rank state", ErrBadState)
	}
	if v := d.u8(); d.err == nil && v != rankStateVersion {
		return st, fmt.Errorf("%w: rank state version %d, want %d", ErrBadState, v, rankStateVersion)
	}
	st.Rank = d.u32()
	st.Epoch = d.u64()
	entries := func() []Entry {
		n := d.count(21)
		var out []Entry
		for range n {
			out = append(out, Entry{Seq: d.u64(), Epoch: d.u64(), Tag: int32(d.u32()), Payload: d.payload()})
		}
		return out
	}
	for range d.count(14) {
		s := SendState{Dst: d.u32()}
		s.Next = d.u64()
		s.Entries = entries()
		s.Queued = entries()
		st.Sends = append(st.Sends, s)
	}
	for range d.count(12) {
		st.Recvs = append(st.Recvs, RecvState{Src: d.u32(), ReceiverState: ReceiverState{Delivered: d.u64()}})
	}
	for range d.count(25) {
		st.Inbox = append(st.Inbox, Message{Src: d.u32(), Tag: int32(d.u32()), Epoch: d.u64(), Seq: d.u64(), Data: d.payload()})
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the rank state", ErrBadState, len(d.b))
	}
	return st, d.err
}

type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = fmt.Errorf("%w: rank state truncated", ErrBadState)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) u8() uint8 {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *stateDecoder) u32() uint32 {
	if v := d.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *stateDecoder) u64() uint64 {
	if v := d.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *stateDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: rank state has a bad count", ErrBadState)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count and checks that the elements, at least
// minSize bytes each, can fit in what is left.
func (d *stateDecoder) count(minSize uint64) uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/minSize {
		d.err = fmt.Errorf("%w: rank state count %d exceeds its length", ErrBadState, n)
		return 0
	}
	return n
}

func (d *stateDecoder) payload() []byte {
	n := d.uvarint()
	if n > MaxPayload {
		if d.err == nil {
			d.err = fmt.Errorf("%w: payload of %d bytes", ErrBadState, n)
		}
		return nil
	}
	v := d.bytes(n)
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}
