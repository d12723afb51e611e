package wasi

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

func sampleRecords() []*jrec {
	return []*jrec{
		{typ: jrecSeal, epoch: 3, prints: []fingerprint{{mount: 1, rel: "a/b", size: 10, mtime: 99,
			ranges: []span{{0, 4}, {8, 10}}, hash: 0xdeadbeef}}},
		{typ: jrecMeta, mount: 0, rel: "f", size: 1 << 40, atime: -5, mtime: 7},
		{typ: jrecExtent, mount: 2, rel: "d/f", off: 4096, data: []byte("prior")},
		{typ: jrecCreate, rel: "new", kind: objDir},
		{typ: jrecRemove, rel: "gone", kind: objFile, rel2: "0123abcd", mode: 0o644, atime: 1, mtime: 2},
		{typ: jrecRemove, rel: "link", kind: objSymlink, data: []byte("../target"), mode: 0o777},
		{typ: jrecRename, rel: "x", rel2: "y/z"},
		{typ: jrecTimes, mount: trashMount, rel: "0123abcd", atime: 3, mtime: 4},
		{typ: jrecAbort},
	}
}

func TestJournalRecordRoundTrip(t *testing.T) {
	b := []byte(journalMagic)
	for _, r := range sampleRecords() {
		b = appendFrame(b, r)
	}
	ents, end, err := decodeJournal(b)
	if err != nil || end != int64(len(b)) || len(ents) != len(sampleRecords()) {
		t.Fatalf("decode: %d records, end %d of %d, %v", len(ents), end, len(b), err)
	}
	for i, r := range sampleRecords() {
		if !reflect.DeepEqual(ents[i].rec, r) {
			t.Errorf("record %d: got %+v, want %+v", i, ents[i].rec, r)
		}
	}
	// Every cut inside the last frame leaves the others intact.
	last := ents[len(ents)-1].at
	for cut := last; cut < int64(len(b)); cut++ {
		got, end, _ := decodeJournal(b[:cut])
		if len(got) != len(ents)-1 || end != last {
			t.Fatalf("cut at %d: %d records, end %d", cut, len(got), end)
		}
	}
	// A flipped bit ends the journal there.
	c := bytes.Clone(b)
	c[ents[3].at+frameHeaderSize] ^= 1
	if got, end, _ := decodeJournal(c); len(got) != 3 || end != ents[3].at {
		t.Fatalf("corrupt record: %d records, end %d", len(got), end)
	}
}

func TestSpanSet(t *testing.T) {
	tests := []struct {
		add         [][2]int64
		want        spanSet
		qOff, qEnd  int64
		wantMissing []span
	}{
		{add: [][2]int64{{0, 10}, {20, 30}}, want: spanSet{{0, 10}, {20, 30}}, qOff: 5, qEnd: 25, wantMissing: []span{{10, 20}}},
		{add: [][2]int64{{20, 30}, {0, 10}, {10, 20}}, want: spanSet{{0, 30}}, qOff: 0, qEnd: 40, wantMissing: []span{{30, 40}}},
		{add: [][2]int64{{5, 6}, {1, 2}, {3, 4}, {0, 100}}, want: spanSet{{0, 100}}, qOff: 50, qEnd: 60},
		{add: [][2]int64{{10, 20}, {30, 40}, {15, 35}}, want: spanSet{{10, 40}}, qOff: 0, qEnd: 50, wantMissing: []span{{0, 10}, {40, 50}}},
		{add: [][2]int64{{4, 4}}, qOff: 1, qEnd: 3, wantMissing: []span{{1, 3}}},
	}
	for i, tt := range tests {
		var s spanSet
		for _, a := range tt.add {
			s.add(a[0], a[1])
		}
		if !reflect.DeepEqual(s, tt.want) {
			t.Errorf("%d: set %v, want %v", i, s, tt.want)
		}
		if got := s.missing(tt.qOff, tt.qEnd); !reflect.DeepEqual(got, tt.wantMissing) {
			t.Errorf("%d: missing %v, want %v", i, got, tt.wantMissing)
		}
	}
}

// FuzzJournalDecode checks that any journal decodes without panicking and
// that the records it yields encode back to the prefix they came from.
func FuzzJournalDecode(f *testing.F) {
	b := []byte(journalMagic)
	for _, r := range sampleRecords() {
		f.Add(appendFrame([]byte(journalMagic), r))
		b = appendFrame(b, r)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, end, err := decodeJournal(b)
		if err != nil {
			return
		}
		re := []byte(journalMagic)
		for _, e := range ents {
			re = appendFrame(re, e.rec)
		}
		if !bytes.Equal(re, b[:end]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzDeltaDecode checks that any blob decodes or fails without panicking.
func FuzzDeltaDecode(f *testing.F) {
	f.Add([]byte(deltaMagic + "\x01\x03\x01\x01\x00\x01a\x00\x01\x00\x01a\x00\x0a\x01\x00\x02hi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeDelta(b)
		decodeDeltas(b)
	})
}

// decodeJournal decodes a journal file's contents. It returns the records
// of the intact prefix and that prefix's length; a torn or corrupt tail is
// ignored. A missing magic is an error.
func decodeJournal(b []byte) ([]journalEntry, int64, error) {
	if len(b) < len(journalMagic) || string(b[:len(journalMagic)]) != journalMagic {
		return nil, 0, fmt.Errorf("%w: no magic", ErrJournal)
	}
	var out []journalEntry
	at := len(journalMagic)
	for {
		p, n, ok := nextFrame(b[at:])
		if !ok {
			break
		}
		r, err := decodeRecord(p)
		if err != nil {
			break
		}
		out = append(out, journalEntry{int64(at), int64(n), r})
		at += n
	}
	return out, int64(at), nil
}
