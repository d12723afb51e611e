package ckpt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzCommits are seeds: commit records and their keys.
func fuzzCommits() (values, keys [][]byte) {
	for _, c := range []Commit{
		{Job: "job", Epoch: 7, Workers: 4, Created: time.Unix(1700000000, 5)},
		{Job: "", Epoch: 0, Workers: 0, Created: time.Unix(0, 0)},
		{Job: "a job with a long name", Epoch: 1<<64 - 1, Workers: 1<<32 - 1, Created: time.Unix(-1, 0)},
	} {
		values = append(values, encodeCommit(c))
		keys = append(keys, commitKey(c.Job, c.Epoch))
	}
	return values, keys
}

// FuzzCommitDecode: a commit record's value and key decode to what they
// encode, or are refused; never a panic.
func FuzzCommitDecode(f *testing.F) {
	values, keys := fuzzCommits()
	for i := range values {
		f.Add(values[i], keys[i])
		f.Add(values[i][:len(values[i])/2], keys[i][:len(keys[i])-1])
	}
	f.Fuzz(func(t *testing.T, v, key []byte) {
		job, epoch, ok := parseCommitKey(key)
		if ok && !bytes.Equal(commitKey(job, epoch), key) {
			t.Fatalf("key %x parsed as %q %d, which encodes as %x", key, job, epoch, commitKey(job, epoch))
		}
		c, ok := decodeCommit(job, epoch, v)
		if !ok {
			return
		}
		if c.Job != job || c.Epoch != epoch {
			t.Fatalf("record decoded as %+v for job %q epoch %d", c, job, epoch)
		}
		if again := encodeCommit(c); !bytes.Equal(again, v) {
			t.Fatalf("record %x decoded as %+v, which encodes as %x", v, c, again)
		}
	})
}

// fuzzRefs are seeds: chunk references to a value in the chunks bucket
// and in a segment.
func fuzzRefs() [][]byte {
	return [][]byte{
		encodeRef(ref{count: 1, chunkLoc: chunkLoc{seq: 9, size: 100}}),
		encodeRef(ref{count: 3, chunkLoc: chunkLoc{seg: 1, off: 64, size: 512}}),
		encodeRef(ref{count: 1 << 40, chunkLoc: chunkLoc{seg: 1, off: 1 << 62, size: 1 << 62}}),
	}
}

// FuzzRefDecode: a chunk reference decodes to what it encodes or is
// refused, and reading the value it names from a small segment returns
// the value or an error: an absurd size or offset never sizes a buffer or
// panics.
func FuzzRefDecode(f *testing.F) {
	for _, v := range fuzzRefs() {
		f.Add(v)
		f.Add(v[:len(v)-1])
	}
	seg := filepath.Join(f.TempDir(), "000001")
	if err := os.WriteFile(seg, bytes.Repeat([]byte{7}, 4096), 0o644); err != nil {
		f.Fatal(err)
	}
	file, err := os.Open(seg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	sg := &segments{files: map[uint32]*os.File{1: file}}
	f.Fuzz(func(t *testing.T, v []byte) {
		r, ok := decodeRef(v)
		if !ok {
			return
		}
		if again, ok := decodeRef(encodeRef(r)); !ok || again != r {
			t.Fatalf("ref %x decoded as %+v, which round-trips as %+v (%v)", v, r, again, ok)
		}
		if r.seg == 0 {
			return
		}
		var buf []byte
		b, err := sg.read(r.chunkLoc, &buf)
		if err == nil && (uint64(len(b)) != r.size || r.off+r.size > 4096) {
			t.Fatalf("ref %+v read %d bytes from a 4096-byte segment", r, len(b))
		}
	})
}
