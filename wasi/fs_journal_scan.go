package wasi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// journalDamage is a damaged frame (or run of bytes) in the middle of a
// journal, between intact records: a failing disk's, not a kill's, for a
// kill leaves a short frame only at the end. A damaged seal holds no undo
// data, so rolling back past it is exact; any other damage makes every
// epoch sealed before it unreachable.
type journalDamage struct {
	at, end int64
	seal    bool // the frame's payload still decodes as a seal
}

// journalScan is what scanFrames found in a journal.
type journalScan struct {
	ents   []journalEntry // intact records; extents without their data
	damage []journalDamage
	end    int64 // end of the last intact record or damage: a torn tail starts here
}

// scanFrames reads the records of the journal f. A frame whose checksum
// or decoding fails is skipped, when the journal goes on with intact
// frames after it, as damage; a frame cut short at the end is a torn tail,
// and any other bad bytes at the end are damage.
func scanFrames(f *os.File) (*journalScan, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	size := fi.Size()
	magic := make([]byte, min(size, int64(len(journalMagic))))
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != journalMagic[:len(magic)] {
		return nil, fmt.Errorf("%w: no magic", ErrJournal)
	}
	sc := &journalScan{}
	if size < int64(len(journalMagic)) {
		return sc, nil // cut short as it was created: no records
	}
	at := int64(len(journalMagic))
	for at < size {
		n := sc.intact(f, at, size)
		at += n
		if at >= size {
			break
		}
		next, seal, ok := resync(f, at, size)
		if !ok {
			if tornTail(f, at, size) {
				break
			}
			next = size // damage runs to the end
		}
		sc.damage = append(sc.damage, journalDamage{at: at, end: next, seal: seal})
		at = next
	}
	sc.end = at
	if at > size {
		sc.end = size
	}
	return sc, nil
}

// intact appends the intact records from at on and returns their length.
func (sc *journalScan) intact(f *os.File, at, size int64) int64 {
	br := bufio.NewReaderSize(io.NewSectionReader(f, at, size-at), 1<<20)
	start := at
	var hdr [frameHeaderSize]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		l := binary.LittleEndian.Uint32(hdr[:])
		if l == 0 || l > maxRecordSize {
			break
		}
		if cap(buf) < int(l) {
			buf = make([]byte, l)
		}
		p := buf[:l]
		if _, err := io.ReadFull(br, p); err != nil {
			break
		}
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		r, err := decodeRecord(p)
		if err != nil {
			break
		}
		n := frameHeaderSize + int64(l)
		if r.typ == jrecExtent {
			r.data = nil
		}
		sc.ents = append(sc.ents, journalEntry{at: at, n: n, rec: r})
		at += n
	}
	return at - start
}

// resync finds where intact records start again after the bad frame at
// at: the end of that frame if its length field leads to an intact frame
// (or to the end of the journal: a whole frame is damage, not a torn
// write), else the first intact frame within one record's reach. seal
// says the bad frame's payload decodes as a seal. ok false: nothing intact
// follows and the frame is cut short, a torn tail.
func resync(f *os.File, at, size int64) (next int64, seal, ok bool) {
	window := min(size-at, 2*(frameHeaderSize+maxRecordSize))
	b := make([]byte, window)
	if _, err := f.ReadAt(b, at); err != nil && !errors.Is(err, io.EOF) {
		return 0, false, false
	}
	if len(b) >= frameHeaderSize {
		l := int64(binary.LittleEndian.Uint32(b))
		if e := frameHeaderSize + l; l > 0 && l <= maxRecordSize && e <= int64(len(b)) {
			if at+e == size || intactFrame(b[e:]) {
				r, err := decodeRecord(b[frameHeaderSize:e])
				return at + e, err == nil && r.typ == jrecSeal, true
			}
		}
	}
	for i := 1; i <= frameHeaderSize+maxRecordSize && i+frameHeaderSize < len(b); i++ {
		if t := b[i+frameHeaderSize]; t >= byte(jrecSeal) && t < byte(jrecMax) && intactFrame(b[i:]) {
			return at + int64(i), false, true
		}
	}
	return 0, false, false
}

// tornTail reports whether the bytes from at to the end of the journal
// are what a kill leaves of a frame written whole by one write: part of
// its header, or a header whose length reaches past the end. Anything
// else there (zeroes a failing disk or a lost power left, a frame whole
// but for its checksum) is damage: the undo records it held are lost.
func tornTail(f *os.File, at, size int64) bool {
	var l [4]byte
	if size-at < int64(len(l)) {
		return true
	}
	if _, err := f.ReadAt(l[:], at); err != nil {
		return false
	}
	n := int64(binary.LittleEndian.Uint32(l[:]))
	return n > 0 && n <= maxRecordSize && at+frameHeaderSize+n > size
}

// intactFrame reports whether b starts with an intact, decodable frame.
func intactFrame(b []byte) bool {
	p, _, ok := nextFrame(b)
	if !ok {
		return false
	}
	_, err := decodeRecord(p)
	return err == nil
}

// exactFrom reports whether rolling back to the seal ents[k] is exact: no
// damage after it but damaged seals. It returns the first such damage.
func (sc *journalScan) exactFrom(k int) (journalDamage, bool) {
	for _, d := range sc.damage {
		if d.at > sc.ents[k].at && !d.seal {
			return d, false
		}
	}
	return journalDamage{}, true
}

// sealOf returns the index of the newest seal of epoch, or -1.
func (sc *journalScan) sealOf(epoch uint64) int {
	for i := len(sc.ents) - 1; i >= 0; i-- {
		if r := sc.ents[i].rec; r.typ == jrecSeal && r.epoch == epoch {
			return i
		}
	}
	return -1
}

// describe is a one-line account of the damage, "" if none.
func (sc *journalScan) describe() string {
	switch len(sc.damage) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("damaged at offset %d", sc.damage[0].at)
	default:
		return fmt.Sprintf("damaged at offset %d and %d other places", sc.damage[0].at, len(sc.damage)-1)
	}
}

// JournalEpochs reads the file journal at path without changing it and
// returns, oldest first, the epochs RollbackFiles can return the files to
// exactly, and a one-line account of any damage found ("" if none). A
// host resuming a run picks a checkpoint among these epochs (falling back
// past a damaged seal), or, for a guest that has no mounts and so no
// files to roll back, needs none of them.
func JournalEpochs(path string) ([]uint64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrJournal, err)
	}
	defer f.Close()
	sc, err := scanFrames(f)
	if err != nil {
		return nil, "", err
	}
	var out []uint64
	for i, e := range sc.ents {
		if e.rec.typ != jrecSeal || slices.Contains(out, e.rec.epoch) {
			continue
		}
		if k := sc.sealOf(e.rec.epoch); k == i {
			if _, ok := sc.exactFrom(k); ok {
				out = append(out, e.rec.epoch)
			}
		}
	}
	slices.Sort(out)
	return out, sc.describe(), nil
}
