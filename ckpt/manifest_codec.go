package ckpt

import (
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/zeebo/xxh3"
)

// A manifest value is
//
//	magic "LHCK" | format u32 LE | total length u64 LE | body | xxh3-64 u64 LE
//
// where the checksum covers everything before it. The header layout is the
// same in every format version, so a newer format is recognised as such.
const (
	manifestMagic     = "LHCK"
	manifestHeaderLen = 16
	manifestTrailer   = 8
)

const (
	filesInline  = 0
	filesChunked = 1
)

func encodeManifest(m *Manifest) []byte {
	b := make([]byte, manifestHeaderLen, 256+len(m.Asyncify)+len(m.Host)+len(m.Files)+8*len(m.Globals)+16*len(m.Chunks)+16*len(m.FileChunks))
	copy(b, manifestMagic)
	format := m.Format
	if format < MinFormatVersion || format > FormatVersion {
		format = FormatVersion
	}
	binary.LittleEndian.PutUint32(b[4:], format)

	b = appendString(b, m.Job)
	b = binary.LittleEndian.AppendUint32(b, m.Worker)
	b = binary.LittleEndian.AppendUint64(b, m.Epoch)
	b = append(b, m.Binding.ModuleDigest[:]...)
	b = appendString(b, m.Binding.Wazero)
	b = appendString(b, m.Binding.Go)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Created.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(m.Globals)))
	for _, g := range m.Globals {
		b = binary.LittleEndian.AppendUint64(b, g)
	}
	b = appendOptBytes(b, m.Asyncify)
	b = appendOptBytes(b, m.Host)
	if m.FileChunks != nil {
		b = append(b, filesChunked)
		b = binary.AppendUvarint(b, m.FilesLen)
		b = binary.AppendUvarint(b, uint64(len(m.FileChunks)))
		b = appendHashes(b, m.FileChunks)
	} else {
		b = append(b, filesInline)
		b = appendOptBytes(b, m.Files)
	}
	b = binary.LittleEndian.AppendUint64(b, m.MemSize)
	b = binary.LittleEndian.AppendUint32(b, m.ChunkSize)
	for _, v := range []uint64{uint64(m.Stats.Chunks), uint64(m.Stats.Zero), uint64(m.Stats.Changed),
		uint64(m.Stats.BytesCopied), uint64(m.Stats.BytesStored), uint64(m.Stats.PauseDur), uint64(m.Stats.WriteDur),
		m.StoredBytes} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendHashes(b, m.Chunks)

	total := len(b) + manifestTrailer
	binary.LittleEndian.PutUint64(b[8:], uint64(total))
	return binary.LittleEndian.AppendUint64(b, xxh3.Hash(b))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendOptBytes keeps nil apart from empty: length+1, or 0 for nil.
func appendOptBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

// appendHashes writes a bitmap of the non-zero hashes, then those hashes.
func appendHashes(b []byte, hs []Hash) []byte {
	start := len(b)
	b = append(b, make([]byte, (len(hs)+7)/8)...)
	for i, h := range hs {
		if !h.IsZero() {
			b[start+i/8] |= 1 << (i % 8)
		}
	}
	for _, h := range hs {
		if !h.IsZero() {
			b = append(b, h[:]...)
		}
	}
	return b
}

// checkManifestHeader checks magic, length and format version, in that
// order, and returns the checksummed part.
func checkManifestHeader(v []byte) (uint32, error) {
	if len(v) < manifestHeaderLen {
		return 0, truncatedf("manifest truncated (%d bytes)", len(v))
	}
	if string(v[:4]) != manifestMagic {
		return 0, corruptf("manifest has a bad magic number")
	}
	format := binary.LittleEndian.Uint32(v[4:])
	total := binary.LittleEndian.Uint64(v[8:])
	if total < manifestHeaderLen+manifestTrailer {
		return format, corruptf("manifest length field %d is impossible", total)
	}
	if uint64(len(v)) < total {
		return format, truncatedf("manifest truncated (%d of %d bytes)", len(v), total)
	}
	if uint64(len(v)) > total {
		return format, corruptf("manifest has %d bytes past its end", uint64(len(v))-total)
	}
	if format < MinFormatVersion || format > FormatVersion {
		return format, &decodeError{kind: ErrFormat, msg: formatMsg(format)}
	}
	body := v[:len(v)-manifestTrailer]
	if xxh3.Hash(body) != binary.LittleEndian.Uint64(v[len(body):]) {
		return format, corruptf("manifest checksum mismatch")
	}
	return format, nil
}

func formatMsg(format uint32) string {
	return "format version " + itoa(uint64(format)) + ", this librahost reads " + itoa(MinFormatVersion) + " to " + itoa(FormatVersion)
}

func itoa(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(buf[i:])
		}
	}
}

// decodeManifest checks and decodes a manifest value. It never panics and
// allocates no more than a small multiple of len(v).
func decodeManifest(v []byte) (*Manifest, error) {
	format, err := checkManifestHeader(v)
	if err != nil {
		return nil, err
	}
	r := reader{b: v[manifestHeaderLen : len(v)-manifestTrailer]}
	m := &Manifest{Format: format, Sum: binary.LittleEndian.Uint64(v[len(v)-manifestTrailer:])}
	m.Job = r.str()
	m.Worker = r.u32()
	m.Epoch = r.u64()
	copy(m.Binding.ModuleDigest[:], r.bytes(32))
	m.Binding.Wazero = r.str()
	m.Binding.Go = r.str()
	m.Created = time.Unix(0, int64(r.u64()))
	if n := r.count(8); n > 0 {
		m.Globals = make([]uint64, n)
		for i := range m.Globals {
			m.Globals[i] = r.u64()
		}
	}
	m.Asyncify = r.optBytes()
	m.Host = r.optBytes()
	switch mode := r.byte(); mode {
	case filesInline:
		m.Files = r.optBytes()
	case filesChunked:
		m.FilesLen = r.uvarint()
		m.FileChunks = r.hashes(r.uvarint())
		if m.FileChunks == nil {
			m.FileChunks = []Hash{}
		}
	default:
		r.fail("manifest has unknown files mode %d", mode)
	}
	m.MemSize = r.u64()
	m.ChunkSize = r.u32()
	var st [8]uint64
	for i := range st {
		st[i] = r.uvarint()
	}
	m.Stats = Stats{Chunks: int(st[0]), Zero: int(st[1]), Changed: int(st[2]),
		BytesCopied: int64(st[3]), BytesStored: int64(st[4]),
		PauseDur: time.Duration(st[5]), WriteDur: time.Duration(st[6])}
	m.StoredBytes = st[7]
	if r.err == nil {
		if m.ChunkSize < minChunkSize || m.ChunkSize > maxChunkSize || m.ChunkSize&(m.ChunkSize-1) != 0 {
			r.fail("manifest has invalid chunk size %d", m.ChunkSize)
		} else {
			m.Chunks = r.hashes(chunkCount(m.MemSize, int(m.ChunkSize)))
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("manifest has %d unread bytes", len(r.b))
	}
	if r.err == nil && m.FileChunks != nil && chunkCount(m.FilesLen, int(m.ChunkSize)) != uint64(len(m.FileChunks)) {
		r.fail("manifest files length %d does not match %d chunks", m.FilesLen, len(m.FileChunks))
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func chunkCount(size uint64, chunkSize int) uint64 {
	return (size + uint64(chunkSize) - 1) / uint64(chunkSize)
}

// reader decodes the manifest body; after the first error every read
// returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = corruptf(format, args...)
	}
	r.b = nil
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail("manifest body is malformed")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("manifest has a bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks that count*size bytes remain.
func (r *reader) count(size uint64) uint64 {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/size {
		r.fail("manifest count %d exceeds its length", n)
		return 0
	}
	return n
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

func (r *reader) optBytes() []byte {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	return append([]byte{}, r.bytes(n-1)...)
}

func (r *reader) hashes(n uint64) []Hash {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b))*8 {
		r.fail("manifest chunk count %d exceeds its length", n)
		return nil
	}
	bitmap := r.bytes((n + 7) / 8)
	ones := 0
	for _, x := range bitmap {
		ones += bits.OnesCount8(x)
	}
	if n%8 != 0 && bitmap != nil && bitmap[len(bitmap)-1]>>(n%8) != 0 {
		r.fail("manifest chunk bitmap has stray bits")
		return nil
	}
	data := r.bytes(uint64(ones) * 16)
	if r.err != nil {
		return nil
	}
	hs := make([]Hash, n)
	for i := range hs {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			copy(hs[i][:], data[:16])
			data = data[16:]
			if hs[i].IsZero() {
				r.fail("manifest lists a zero hash as stored")
				return nil
			}
		}
	}
	return hs
}
