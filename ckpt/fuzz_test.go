package ckpt

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
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
	return [][]byte{encodeManifest(full), encodeManifest(&chunked), encodeManifest(empty)}
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

func FuzzChunkDecode(f *testing.F) {
	// Codecs live as long as the process: fuzz workers run the function
	// after the F's cleanups would have closed them.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecodeAllCapLimit(true))
	for _, raw := range [][]byte{genMemory(4096, 1), randomBytes(4096), []byte("short")} {
		v, _ := encodeChunk(enc, append(make([]byte, chunkHeaderLen), raw...), nil)
		f.Add(v, uint16(len(raw)))
	}
	f.Fuzz(func(t *testing.T, v []byte, n uint16) {
		dst := make([]byte, n)
		err := decodeChunk(v, dst, Hash{1}, dec)
		if err == nil {
			t.Fatal("a chunk with a made-up hash was accepted")
		}
		if _, ok := err.(*decodeError); !ok {
			t.Fatalf("error of type %T: %v", err, err)
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
	for i, raw := range [][]byte{genMemory(4096, 1), randomBytes(4096)} {
		v, _ := encodeChunk(enc, append(make([]byte, chunkHeaderLen), raw...), nil)
		write("FuzzChunkDecode", fmt.Sprintf("seed-%d", i), fmt.Sprintf("[]byte(%q)\nuint16(%d)\n", v, len(raw)))
		write("FuzzChunkDecode", fmt.Sprintf("seed-short-%d", i), fmt.Sprintf("[]byte(%q)\nuint16(%d)\n", v[:20], len(raw)))
	}
}
