package ckpt

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// A control message (Msg) on the wire, for the drivers that carry them
// between hosts (host/jobctl):
//
//	version u8 | kind u8 | from | to | inc | epoch | oldest
//	| place list(host) | live list(u8 0/1) | digests list(rank, hash [16]byte)
//	| record u8 (0 none, 1: epoch | inc | place list(host)
//	                         | holders list(list(host)) | digests list(…))
//	| err string | rank | host | ended u8 (0/1) | held (nanoseconds)
//
// Numbers (hosts, ranks, epochs, counts) are unsigned varints. A list is
// its length plus one, then its elements; 0 is a nil list, so that nil and
// empty stay apart. A string is its length, then UTF-8 bytes. Nothing may
// follow the message. A newer version is refused as such.
const (
	MsgCodecVersion = 4 // 2: migration kinds, with rank, host and ended; 3: oldest; 4: held

	maxMsgHosts = 1 << 16 // hosts of a job, as host IDs go
	maxMsgRanks = 1 << 16 // ranks of a job
	maxMsgErr   = 4 << 10 // bytes of Err
)

// AppendMsg appends m's encoding to dst.
func AppendMsg(dst []byte, m Msg) []byte {
	dst = append(dst, MsgCodecVersion, byte(m.Kind))
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = binary.AppendUvarint(dst, m.Inc)
	dst = binary.AppendUvarint(dst, m.Epoch)
	dst = binary.AppendUvarint(dst, m.Oldest)
	dst = appendHosts(dst, m.Place)
	dst = appendListLen(dst, m.Live == nil, len(m.Live))
	for _, l := range m.Live {
		dst = append(dst, boolByte(l))
	}
	dst = appendDigests(dst, m.Digests)
	if r := m.Record; r == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, r.Epoch)
		dst = binary.AppendUvarint(dst, r.Inc)
		dst = appendHosts(dst, r.Place)
		dst = appendListLen(dst, r.Holders == nil, len(r.Holders))
		for _, hs := range r.Holders {
			dst = appendHosts(dst, hs)
		}
		dst = appendDigests(dst, r.Digests)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Err)))
	dst = append(dst, m.Err...)
	dst = binary.AppendUvarint(dst, uint64(m.Rank))
	dst = binary.AppendUvarint(dst, uint64(m.Host))
	dst = append(dst, boolByte(m.Ended))
	return binary.AppendUvarint(dst, uint64(max(m.Held, 0)))
}

func appendListLen(dst []byte, isNil bool, n int) []byte {
	if isNil {
		return append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(n)+1)
}

func appendHosts(dst []byte, hs []HostID) []byte {
	dst = appendListLen(dst, hs == nil, len(hs))
	for _, h := range hs {
		dst = binary.AppendUvarint(dst, uint64(h))
	}
	return dst
}

func appendDigests(dst []byte, ds []RankDigest) []byte {
	dst = appendListLen(dst, ds == nil, len(ds))
	for _, d := range ds {
		dst = binary.AppendUvarint(dst, uint64(d.Rank))
		dst = append(dst, d.Digest[:]...)
	}
	return dst
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// DecodeMsg decodes a message that AppendMsg encoded. Anything else is
// refused with an error wrapping ErrBadMsg that says what is wrong.
func DecodeMsg(b []byte) (Msg, error) {
	if len(b) == 0 {
		return Msg{}, fmt.Errorf("%w: empty", ErrBadMsg)
	}
	if b[0] != MsgCodecVersion {
		return Msg{}, fmt.Errorf("%w: version %d, this build reads version %d: run one librahost release on every host", ErrBadMsg, b[0], MsgCodecVersion)
	}
	r := msgReader{b: b[1:]}
	var m Msg
	m.Kind = MsgKind(r.byte())
	if r.err == nil && (m.Kind < MsgMarker || m.Kind > MsgRoute) {
		r.fail("unknown kind %d", uint8(m.Kind))
	}
	m.From, m.To = r.host(), r.host()
	m.Inc, m.Epoch, m.Oldest = r.uvarint(), r.uvarint(), r.uvarint()
	m.Place = r.hosts()
	if n, ok := r.list(1, maxMsgHosts, "live hosts"); ok {
		m.Live = make([]bool, n)
		for i := range m.Live {
			switch r.byte() {
			case 0:
			case 1:
				m.Live[i] = true
			default:
				r.fail("live flag of host %d is neither 0 nor 1", i)
			}
		}
	}
	m.Digests = r.digests()
	switch r.byte() {
	case 0:
	case 1:
		rec := &CommitRecord{Epoch: r.uvarint(), Inc: r.uvarint(), Place: r.hosts()}
		if n, ok := r.list(1, maxMsgRanks, "holder lists"); ok {
			rec.Holders = make([][]HostID, n)
			for i := range rec.Holders {
				rec.Holders[i] = r.hosts()
			}
		}
		rec.Digests = r.digests()
		m.Record = rec
	default:
		r.fail("record flag is neither 0 nor 1")
	}
	n := r.uvarint()
	switch {
	case r.err != nil:
	case n > maxMsgErr:
		r.fail("error text of %d bytes, at most %d", n, maxMsgErr)
	case n > uint64(len(r.b)):
		r.fail("error text past the end")
	case !utf8.Valid(r.b[:n]):
		r.fail("error text is not UTF-8")
	default:
		m.Err = string(r.b[:n])
		r.b = r.b[n:]
	}
	if rank := r.uvarint(); r.err == nil && rank >= maxMsgRanks {
		r.fail("rank %d, at most %d", rank, maxMsgRanks-1)
	} else {
		m.Rank = int(rank)
	}
	m.Host = r.host()
	switch r.byte() {
	case 0:
	case 1:
		m.Ended = true
	default:
		r.fail("ended flag is neither 0 nor 1")
	}
	if held := r.uvarint(); r.err == nil && held > math.MaxInt64 {
		r.fail("held time %d ns out of range", held)
	} else {
		m.Held = time.Duration(held)
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes past its end", len(r.b))
	}
	if r.err != nil {
		return Msg{}, r.err
	}
	return m, nil
}

// msgReader decodes a control message; after the first error every read
// returns zero values.
type msgReader struct {
	b   []byte
	err error
}

func (r *msgReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadMsg, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *msgReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("ends early")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *msgReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad or missing number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *msgReader) host() HostID {
	h := r.uvarint()
	if r.err == nil && h >= maxMsgHosts {
		r.fail("host %d, at most %d", h, maxMsgHosts-1)
		return 0
	}
	return HostID(h)
}

// list reads a list's length: ok is false for a nil list (or an error).
// Each element takes at least size bytes, and there are at most max.
func (r *msgReader) list(size, max uint64, what string) (int, bool) {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return 0, false
	}
	n--
	if n > max || n > uint64(len(r.b))/size {
		r.fail("%d %s, more than the message holds", n, what)
		return 0, false
	}
	return int(n), true
}

func (r *msgReader) hosts() []HostID {
	n, ok := r.list(1, maxMsgRanks, "hosts")
	if !ok {
		return nil
	}
	hs := make([]HostID, n)
	for i := range hs {
		hs[i] = r.host()
	}
	return hs
}

func (r *msgReader) digests() []RankDigest {
	n, ok := r.list(uint64(1+len(Hash{})), maxMsgRanks, "rank digests")
	if !ok {
		return nil
	}
	ds := make([]RankDigest, n)
	for i := range ds {
		rank := r.uvarint()
		if r.err == nil && rank >= maxMsgRanks {
			r.fail("rank %d, at most %d", rank, maxMsgRanks-1)
		}
		ds[i].Rank = int(rank)
		if r.err == nil && len(r.b) >= len(Hash{}) {
			copy(ds[i].Digest[:], r.b)
			r.b = r.b[len(Hash{}):]
		} else {
			r.fail("rank digest past the end")
		}
	}
	return ds
}
