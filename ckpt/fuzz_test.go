package ckpt

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/xxh3"
)

// fuzzManifests are seeds: valid encodings of assorted manifests.
func fuzzManifests() [][]byte {
	full := &Manifest{
		Meta: Meta{Key: Key{Job: "job", Worker: 1}, Epoch: 7, Binding: testBinding,
			Globals: []uint64{1, 2, 3}, Asyncify: []byte{}, Host: []byte("h"), Created: time.Unix(1, 2)},
		MemSize: 5 * 4096, ChunkSize: 4096,
		Chunks: []Hash{{1}, {}, {2}, {3}, {}},
		Stats:  Stats{Chunks: 5, Zero: 2, Changed: 3, BytesCopied: 3 * 4096, PauseDur: time.Millisecond},
	}
	chunked := *full
	chunked.FileChunks, chunked.FilesLen = []Hash{{9}, {}}, 4096+1
	empty := &Manifest{ChunkSize: 65536}
	v1 := *full // written by format 1, still read
	v1.Format = 1
	return [][]byte{encodeManifest(full), encodeManifest(&chunked), encodeManifest(empty), encodeManifest(&v1)}
}

func FuzzManifestDecode(f *testing.F) {
	for _, v := range fuzzManifests() {
		f.Add(v)
		f.Add(v[:len(v)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkManifestDecode(t, data)
		// Also with a correct header and checksum, to reach the body parser.
		if len(data) >= manifestHeaderLen+manifestTrailer {
			fixed := append([]byte(manifestMagic), data[4:]...)
			binary.LittleEndian.PutUint32(fixed[4:], FormatVersion)
			binary.LittleEndian.PutUint64(fixed[8:], uint64(len(fixed)))
			binary.LittleEndian.PutUint64(fixed[len(fixed)-8:], xxh3.Hash(fixed[:len(fixed)-8]))
			checkManifestDecode(t, fixed)
		}
	})
}

func checkManifestDecode(t *testing.T, data []byte) {
	{
		m, err := decodeManifest(data)
		if err != nil {
			if _, ok := err.(*decodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		m2, err := decodeManifest(encodeManifest(m))
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
		m.Sum, m2.Sum = 0, 0
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
	}
}

// FuzzChunkDecode exercises the chunk header decoder, the raw path and the
// S2 path. (The zstd payload decoder is klauspost/compress's, fuzzed
// upstream; the fuzzing engine stalls on it here.)
func FuzzChunkDecode(f *testing.F) {
	raw := []byte("a short raw chunk")
	v := append(make([]byte, chunkHeaderLen), raw...)
	putChunkHeader(v, chunkHeader{codec: codecRaw, rawLen: uint32(len(raw)), sum: xxh3.Hash(raw)})
	f.Add(v, uint16(len(raw)))
	f.Fuzz(func(t *testing.T, v []byte, n uint16) {
		h, payload, err := decodeChunkHeader(v, uint32(n))
		if err != nil {
			if _, ok := err.(*decodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if h.rawLen > uint32(n) || (h.codec == codecRaw && len(payload) != int(h.rawLen)) {
			t.Fatalf("header %+v accepted for %d payload bytes, limit %d", h, len(payload), n)
		}
		if h.codec == codecRaw || h.codec == codecS2 {
			dst := make([]byte, h.rawLen)
			err := decodeChunk(v, dst, Hash{1}, nil, nil)
			if err == nil {
				t.Fatal("a chunk with a made-up hash was accepted")
			}
			if _, ok := err.(*decodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from the seeds when
// CKPT_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CKPT_WRITE_CORPUS") == "" {
		t.Skip("set CKPT_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(fuzz, name, body string) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range fuzzManifests() {
		write("FuzzManifestDecode", fmt.Sprintf("seed-valid-%d", i), fmt.Sprintf("[]byte(%q)\n", v))
		v[len(v)-1] ^= 1
		write("FuzzManifestDecode", fmt.Sprintf("seed-badsum-%d", i), fmt.Sprintf("[]byte(%q)\n", v))
	}
	enc, _ := testCodecs(t)
	structured := genMemory(4096, 1)
	fillStructured(structured, nil2rand())
	seeds := []struct {
		name string
		enc  chunkEncoder
		raw  []byte
	}{
		{"seed-0", enc, genMemory(4096, 1)},
		{"seed-1", enc, randomBytes(4096)},
		{"seed-s2-0", s2Encoder, structured},
		{"seed-s2-1", s2Encoder, structured[:300]},
	}
	for _, sd := range seeds {
		v, _ := encodeChunk(sd.enc, append(make([]byte, chunkHeaderLen), sd.raw...), nil)
		write("FuzzChunkDecode", sd.name, fmt.Sprintf("[]byte(%q)\nuint16(%d)\n", v, len(sd.raw)))
		short := strings.Replace(sd.name, "seed-", "seed-short-", 1)
		write("FuzzChunkDecode", short, fmt.Sprintf("[]byte(%q)\nuint16(%d)\n", v[:20], len(sd.raw)))
	}
}
