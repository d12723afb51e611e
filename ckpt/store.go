package ckpt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Config configures a Store. The zero value of each field means its default.
type Config struct {
	Path      string // bbolt file, created with its parent directories; chunk values go in Path+".seg"
	ChunkSize int    // default 64 KiB; a power of two, at least 4 KiB
	Keep      int    // epochs kept per Key, default 3
	Workers   int    // parallelism for hash, compress and decompress; default GOMAXPROCS
	NoSync    bool   // skip fsync; tests only
	Codec     Codec  // compression of the chunks written; default CodecS2

	// PoolBytes bounds the copy buffers kept between captures (so that a
	// capture after the first does not fault in fresh memory while the
	// guest is paused). Default 256 MiB; negative keeps none.
	PoolBytes int

	// ScrubBytes is how many bytes of stored chunk values are checked
	// after each durable capture, so that a damaged one is written again
	// by the next capture (store_scrub.go). Default 32 MiB; negative
	// checks none.
	ScrubBytes int64
}

const (
	defaultChunkSize = 64 << 10
	minChunkSize     = 4 << 10
	maxChunkSize     = 64 << 20
	defaultKeep      = 3
	defaultPoolBytes = 256 << 20
	openTimeout      = time.Second
)

var (
	bucketChunks    = []byte("chunks")
	bucketRefs      = []byte("refs")
	bucketManifests = []byte("manifests")
)

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		return c, errors.New("ckpt: Config.Path is empty")
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = defaultChunkSize
	}
	if c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize || c.ChunkSize&(c.ChunkSize-1) != 0 {
		return c, fmt.Errorf("ckpt: Config.ChunkSize %d is not a power of two between %d and %d", c.ChunkSize, minChunkSize, maxChunkSize)
	}
	if c.Keep == 0 {
		c.Keep = defaultKeep
	}
	if c.Keep < 0 {
		return c, fmt.Errorf("ckpt: Config.Keep %d is negative", c.Keep)
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	switch c.Codec {
	case CodecDefault:
		c.Codec = CodecS2
	case CodecS2, CodecZstd:
	default:
		return c, fmt.Errorf("ckpt: Config.Codec %v is unknown", c.Codec)
	}
	if c.PoolBytes == 0 {
		c.PoolBytes = defaultPoolBytes
	}
	if c.ScrubBytes == 0 {
		c.ScrubBytes = defaultScrubBytes
	}
	return c, nil
}

// Store is a checkpoint store backed by one bbolt file and the segment
// files beside it (segment.go). It is safe for
// concurrent use; captures of several Keys may run at the same time.
type Store struct {
	cfg  Config
	db   *bolt.DB
	enc  chunkEncoder
	dec  *zstd.Decoder
	bufs *bufPool
	zero []byte // ChunkSize zero bytes

	scratch sync.Pool // *[]byte of ChunkSize+decodeSlack, for decoding

	mu      sync.Mutex
	keys    map[Key]*keyState
	closeMu sync.RWMutex // held for reading while sending on writeq
	closed  bool         // guarded by closeMu
	pinned  map[pin]int  // base epochs that queued captures were compared against
	// commits are by job its newest committed epochs the Keep rule
	// keeps, oldest first: it drops no epoch from the first on (KeepFrom).
	commits map[string][]uint64

	badMu sync.Mutex
	bad   map[Hash]struct{} // chunks found corrupt: rewritten when captured again

	writeq     chan *Pending
	writerDone chan struct{}

	// queueMu and queueCond hold the scans of queued copy-on-write
	// captures (valueStream.wait); writerOutside is set while the writer
	// waits outside the store (Meta.HostLater).
	queueMu       sync.Mutex
	queueCond     sync.Cond
	writerOutside bool

	// gcMu is held by the writer from the moment a capture is done until
	// it has freed what the commit left (freeValues).
	gcMu    sync.Mutex
	garbage []chunkLoc // values a freeValues could not free; writer-owned

	scrubNext  []byte           // the refs key scrubStep checks next; writer-owned
	scrubRound map[Key]struct{} // keys durably captured since the current pass began (store_scrub.go); writer-owned
	scrubbed   int64            // bytes of values checked so far; writer-owned

	segs    *segments
	offered replicaCache // the last ReplicaOf results (store_replica.go)
	valBufs sync.Pool    // *[]byte, for values read from segments

	pinMu sync.Mutex
	pins  map[*IndexPin]struct{} // snapshots of the index kept for lazy restores (index_places.go)
}

// Open opens or creates the store at cfg.Path. If another process (or
// another Store in this one) has it open, Open fails after one second with
// ErrInUse.
func Open(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("ckpt: create store directory: %w", err)
	}
	db, err := openBolt(cfg.Path, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	var segs *segments
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChunks, bucketRefs, bucketManifests} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if _, err := sweepOrphans(tx); err != nil {
			return err
		}
		var err error
		segs, err = openSegments(tx, cfg.Path+".seg", cfg.NoSync)
		return err
	})
	if err != nil {
		if segs != nil {
			segs.close()
		}
		db.Close()
		return nil, fmt.Errorf("ckpt: initialise store %s: %w", cfg.Path, err)
	}
	enc := chunkEncoder{codec: codecS2}
	if cfg.Codec == CodecZstd {
		// Literals are not entropy-coded: on the benchmark data sets this
		// makes the encoder 8 % (mixed) to 20 % (Go heap) faster per core
		// for 0-2 % larger chunks.
		enc.codec = codecZstd
		enc.zstd, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(cfg.Workers), zstd.WithEncoderCRC(false), zstd.WithNoEntropyCompression(true),
			zstd.WithSingleSegment(true), zstd.WithWindowSize(windowFor(cfg.ChunkSize)))
		if err != nil {
			segs.close()
			db.Close()
			return nil, fmt.Errorf("ckpt: zstd encoder: %w", err)
		}
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(cfg.Workers),
		zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		segs.close()
		db.Close()
		return nil, fmt.Errorf("ckpt: zstd decoder: %w", err)
	}
	s := &Store{
		cfg:        cfg,
		db:         db,
		enc:        enc,
		dec:        dec,
		bufs:       newBufPool(chunkHeaderLen+cfg.ChunkSize+encodeSlack(cfg.ChunkSize), cfg.PoolBytes),
		zero:       make([]byte, cfg.ChunkSize),
		keys:       make(map[Key]*keyState),
		pinned:     make(map[pin]int),
		commits:    make(map[string][]uint64),
		bad:        make(map[Hash]struct{}),
		writeq:     make(chan *Pending, 1024),
		writerDone: make(chan struct{}),
		segs:       segs,
	}
	s.queueCond.L = &s.queueMu
	s.scratch.New = func() any {
		b := make([]byte, cfg.ChunkSize+decodeSlack)
		return &b
	}
	s.valBufs.New = func() any {
		b := make([]byte, 0, chunkHeaderLen+cfg.ChunkSize+encodeSlack(cfg.ChunkSize))
		return &b
	}
	go s.writer()
	return s, nil
}

// openBolt opens the index once checkIndex has found it sound: bbolt
// itself walks every page at Open (NoFreelistSync), trusting what it
// reads.
func openBolt(path string, noSync bool) (db *bolt.DB, err error) {
	if err := checkIndexLocked(path); err != nil {
		return nil, err
	}
	defer func() {
		// bbolt panics in this goroutine if its walk of the pages
		// reports damage that checkIndex missed.
		if r := recover(); r != nil {
			db, err = nil, indexDamaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         openTimeout,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
		NoSync:          noSync,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &storeError{kind: ErrInUse, msg: fmt.Sprintf("ckpt: store %s is in use by another process", path)}
	}
	if err != nil {
		return nil, fmt.Errorf("ckpt: open store %s: %w", path, err)
	}
	return db, nil
}

func windowFor(chunkSize int) int {
	if chunkSize < zstd.MinWindowSize {
		return zstd.MinWindowSize
	}
	return chunkSize
}

// Close waits for pending captures to become durable (or fail) and closes
// the file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.writeq)
	s.closeMu.Unlock()
	<-s.writerDone
	if s.enc.zstd != nil {
		s.enc.zstd.Close()
	}
	s.dec.Close()
	s.segs.close()
	s.releasePins()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("ckpt: close store %s: %w", s.cfg.Path, err)
	}
	return nil
}

// Path returns the store's file name.
func (s *Store) Path() string { return s.cfg.Path }

type storeError struct {
	kind error
	msg  string
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.kind }

// Reserve prepares copy buffers for capturing a memory of memSize bytes, so
// that the first Capture does not fault in fresh memory while the guest is
// paused (measured: ~300 ms instead of ~60 ms for 256 MiB). Call it when a
// worker starts or its memory grows; it does nothing if Config.PoolBytes
// is negative.
func (s *Store) Reserve(memSize int) {
	if s.cfg.PoolBytes < 0 {
		return
	}
	s.bufs.reserve(int(chunkCount(uint64(memSize), s.cfg.ChunkSize)))
}
