package wasi

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Undo journal file layout: journalMagic, then records. Each record is
// framed as a little-endian uint32 payload length, a uint32 CRC-32C of the
// payload, and the payload: a record type byte and its fields (varints and
// length-prefixed strings). A frame whose length or checksum does not match
// ends the journal: it is the torn tail of a write cut short by a kill.
const (
	journalMagic    = "LHJRNL\x00\x01"
	frameHeaderSize = 8
	// maxRecordSize bounds one record; extents are split to stay below it.
	maxRecordSize = 4 << 20
	// extentChunk is the largest span of prior contents in one record.
	extentChunk = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// jrecType is the type of a journal record.
type jrecType byte

const (
	// jrecSeal ends an epoch: records after it undo changes made after
	// checkpoint epoch. It carries fingerprints of the files touched in the
	// epoch it ends.
	jrecSeal jrecType = iota + 1
	// jrecMeta is the state of a regular file at its first change in an
	// epoch: size and times. Undo: truncate to size, set the times.
	jrecMeta
	// jrecExtent holds prior contents at off. Undo: write them back.
	jrecExtent
	// jrecCreate names a file, directory, symbolic link or hard link the
	// guest created. Undo: remove it.
	jrecCreate
	// jrecRemove names something the guest removed: a file kept in the
	// trash under rel2, a symbolic link to data, or a directory (mode,
	// times). Undo: put it back.
	jrecRemove
	// jrecRename is a rename of rel to rel2. Undo: rename back.
	jrecRename
	// jrecTimes holds the times of rel before a change of them. Undo: set
	// them back.
	jrecTimes
	// jrecAbort cancels the newest record not yet cancelled: its operation
	// failed and was not applied.
	jrecAbort
	jrecMax
)

// trashMount is the mount index of records about files in the trash:
// removed files still open and written by the guest.
const trashMount = 0xffff

// Object kinds in create and remove records.
const (
	objFile    = 1
	objDir     = 2
	objSymlink = 3
)

// jrec is one decoded journal record; which fields are used depends on typ.
type jrec struct {
	typ   jrecType
	epoch uint64
	mount int
	rel   string
	rel2  string // rename target, trash name
	kind  byte
	off   int64 // extent offset
	size  int64
	atime int64
	mtime int64
	mode  uint32
	data  []byte // prior contents; a removed link's target
	// prints are the seal's fingerprints.
	prints []fingerprint
}

// fingerprint is what a seal remembers of one file the guest touched in
// the epoch it ends, to tell after a rollback whether the file was changed
// behind the guest's back.
type fingerprint struct {
	mount       int
	rel         string
	size, mtime int64
	ranges      []span // the ranges the guest changed
	hash        uint32 // CRC-32C of the contents of ranges at the seal
}

// encode appends the payload of r to b.
func (r *jrec) encode(b []byte) []byte {
	b = append(b, byte(r.typ))
	switch r.typ {
	case jrecSeal:
		b = binary.AppendUvarint(b, r.epoch)
		b = binary.AppendUvarint(b, uint64(len(r.prints)))
		for _, p := range r.prints {
			b = binary.AppendUvarint(b, uint64(p.mount))
			b = appendString(b, p.rel)
			b = binary.AppendVarint(b, p.size)
			b = binary.AppendVarint(b, p.mtime)
			b = binary.AppendUvarint(b, uint64(len(p.ranges)))
			for _, s := range p.ranges {
				b = binary.AppendVarint(b, s.off)
				b = binary.AppendVarint(b, s.end-s.off)
			}
			b = binary.LittleEndian.AppendUint32(b, p.hash)
		}
	case jrecMeta:
		b = r.appendPath(b)
		b = binary.AppendVarint(b, r.size)
		b = binary.AppendVarint(b, r.atime)
		b = binary.AppendVarint(b, r.mtime)
	case jrecExtent:
		b = r.appendPath(b)
		b = binary.AppendVarint(b, r.off)
		b = appendString(b, string(r.data))
	case jrecCreate:
		b = r.appendPath(b)
		b = append(b, r.kind)
	case jrecRemove:
		b = r.appendPath(b)
		b = append(b, r.kind)
		b = appendString(b, r.rel2)
		b = appendString(b, string(r.data))
		b = binary.AppendUvarint(b, uint64(r.mode))
		b = binary.AppendVarint(b, r.atime)
		b = binary.AppendVarint(b, r.mtime)
	case jrecRename:
		b = r.appendPath(b)
		b = appendString(b, r.rel2)
	case jrecTimes:
		b = r.appendPath(b)
		b = binary.AppendVarint(b, r.atime)
		b = binary.AppendVarint(b, r.mtime)
	case jrecAbort:
	}
	return b
}

func (r *jrec) appendPath(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(r.mount))
	return appendString(b, r.rel)
}

// appendFrame appends r framed with its length and checksum.
func appendFrame(b []byte, r *jrec) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b = r.encode(b)
	payload := b[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// nextFrame returns the payload of the frame at the start of b and the
// frame's length, or ok false when b does not start with a whole, intact
// frame.
func nextFrame(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < frameHeaderSize {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxRecordSize || uint64(len(b)-frameHeaderSize) < uint64(l) {
		return nil, 0, false
	}
	payload = b[frameHeaderSize : frameHeaderSize+l]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, frameHeaderSize + int(l), true
}

// decodeRecord decodes one payload.
func decodeRecord(p []byte) (*jrec, error) {
	d := &decoder{b: p}
	r := &jrec{typ: jrecType(d.byte())}
	path := func() {
		r.mount = int(d.uvarint() & 0xffff)
		r.rel = d.string()
		if d.err == nil && !validRel(r.rel) {
			d.fail("bad path %q", r.rel)
		}
	}
	switch r.typ {
	case jrecSeal:
		r.epoch = d.uvarint()
		n := d.count(9)
		for i := 0; i < n && d.err == nil; i++ {
			var fp fingerprint
			fp.mount = int(d.uvarint() & 0xffff)
			fp.rel = d.string()
			fp.size = d.varint()
			fp.mtime = d.varint()
			nr := d.count(2)
			for j := 0; j < nr && d.err == nil; j++ {
				off, l := d.varint(), d.varint()
				if off < 0 || l <= 0 || off+l < off {
					d.fail("bad range")
				}
				fp.ranges = append(fp.ranges, span{off, off + l})
			}
			if len(d.b) < 4 {
				d.fail("truncated seal")
				break
			}
			fp.hash = binary.LittleEndian.Uint32(d.b)
			d.b = d.b[4:]
			if d.err == nil && !validRel(fp.rel) {
				d.fail("bad path %q", fp.rel)
			}
			r.prints = append(r.prints, fp)
		}
	case jrecMeta:
		path()
		r.size = d.varint()
		r.atime = d.varint()
		r.mtime = d.varint()
		if r.size < 0 {
			d.fail("bad size")
		}
	case jrecExtent:
		path()
		r.off = d.varint()
		r.data = d.bytes()
		if r.off < 0 || r.off+int64(len(r.data)) < r.off {
			d.fail("bad extent")
		}
	case jrecCreate:
		path()
		r.kind = d.byte()
		if r.kind < objFile || r.kind > objSymlink {
			d.fail("bad kind")
		}
	case jrecRemove:
		path()
		r.kind = d.byte()
		r.rel2 = d.string()
		r.data = d.bytes()
		r.mode = uint32(d.uvarint())
		r.atime = d.varint()
		r.mtime = d.varint()
		if r.kind < objFile || r.kind > objSymlink || (r.kind == objFile && !validTrashName(r.rel2)) {
			d.fail("bad remove record")
		}
	case jrecRename:
		path()
		r.rel2 = d.string()
		if d.err == nil && !validRel(r.rel2) {
			d.fail("bad path %q", r.rel2)
		}
	case jrecTimes:
		path()
		r.atime = d.varint()
		r.mtime = d.varint()
	case jrecAbort:
	default:
		d.fail("record type %d", r.typ)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, d.err)
	}
	return r, nil
}

// journalEntry is a record and where its frame starts in the journal.
type journalEntry struct {
	at  int64
	n   int64 // frame length
	rec *jrec
}

// bytes reads a string as a byte slice, nil when empty.
func (d *decoder) bytes() []byte {
	if s := d.string(); s != "" {
		return []byte(s)
	}
	return nil
}

// validTrashName reports whether n can name a file in the trash directory.
func validTrashName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}
