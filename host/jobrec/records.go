package jobrec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Config says where the records are kept and how much of them.
type Config struct {
	// Dir is the host's --data directory: records in Dir/jobs.db, output
	// under Dir/output.
	Dir string
	// MaxOutput bounds the output kept of each job here (the newest).
	// Default 64 MiB.
	MaxOutput int64
	// MaxTotal bounds the output kept over the jobs that have ended (the
	// newest jobs'). Default 1 GiB.
	MaxTotal int64
	// Keep is how many records are kept (the newest). Default 1,000.
	Keep int
}

// Defaults of Config.
const (
	DefaultMaxOutput = 64 << 20
	DefaultMaxTotal  = 1 << 30
	DefaultKeep      = 1000
)

// Record is what a host keeps of one job: its part of it.
type Record struct {
	ID        string   `json:"id"`
	Module    string   `json:"module"`
	N         int      `json:"n"`
	Submitter string   `json:"submitter"`
	Detached  bool     `json:"detached,omitempty"`  // submitted by the Submitter host for another
	Placement []string `json:"placement,omitempty"` // host of each rank
	// State is the daemon's (preparing, running, ended, failed,
	// cancelled); Ended is zero while the job runs.
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Why     string    `json:"why,omitempty"` // how it ended, if not by its ranks' exits
	Workers []Worker  `json:"workers"`
	// OutputGone: the job's output here was removed to keep the newest
	// jobs' (Config.MaxTotal).
	OutputGone bool `json:"output_gone,omitempty"`
}

// Worker is how one rank of the job here ran, or ended.
type Worker struct {
	Rank  int    `json:"rank"`
	State string `json:"state"`
	Exit  int    `json:"exit"`
	Error string `json:"error,omitempty"`
}

// DB is a host's records and the output of its jobs. It is safe for
// concurrent use.
type DB struct {
	cfg Config
	db  *bolt.DB

	mu   sync.Mutex
	logs map[string]*Log // of the jobs running: written to
}

var (
	bucketJobs = []byte("jobs") // sequence u64 → Record (JSON)
	bucketIDs  = []byte("ids")  // job ID → sequence
)

// Open opens (or makes) the records in cfg.Dir.
func Open(cfg Config) (*DB, error) {
	if cfg.Dir == "" {
		return nil, errors.New("jobrec: no directory for the records")
	}
	if cfg.MaxOutput < 0 || cfg.MaxTotal < 0 || cfg.Keep < 0 {
		return nil, fmt.Errorf("jobrec: bounds %d, %d, %d: want 0 (the default) or more", cfg.MaxOutput, cfg.MaxTotal, cfg.Keep)
	}
	if cfg.MaxOutput == 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if cfg.MaxTotal == 0 {
		cfg.MaxTotal = DefaultMaxTotal
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "output"), 0o755); err != nil {
		return nil, fmt.Errorf("jobrec: %v", err)
	}
	path := filepath.Join(cfg.Dir, "jobs.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is open in another process (another host daemon on this --data?): stop it or give another --data", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("jobrec: open %s: %v (move it away to start with no records)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJobs, bucketIDs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("jobrec: %s: %v", path, err)
	}
	return &DB{cfg: cfg, db: db, logs: map[string]*Log{}}, nil
}

// Config is the records' configuration, defaults filled in.
func (d *DB) Config() Config { return d.cfg }

// Close closes the records; the logs still written to are finished.
func (d *DB) Close() error {
	d.mu.Lock()
	for id, l := range d.logs {
		l.Finish()
		delete(d.logs, id)
	}
	d.mu.Unlock()
	return d.db.Close()
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// decodeRecord decodes a stored record.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: record: %v", ErrDamaged, err)
	}
	if r.ID == "" || len(r.ID) > 64 {
		return Record{}, fmt.Errorf("%w: record of job %q", ErrDamaged, r.ID)
	}
	return r, nil
}

// Put adds or replaces the record of r.ID. A new record past Config.Keep
// removes the oldest ended one, and its output.
func (d *DB) Put(r Record) error {
	if r.ID == "" || len(r.ID) > 64 {
		return fmt.Errorf("jobrec: bad job ID %q", r.ID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var gone []string
	err = d.db.Update(func(tx *bolt.Tx) error {
		jobs, ids := tx.Bucket(bucketJobs), tx.Bucket(bucketIDs)
		if k := ids.Get([]byte(r.ID)); k != nil {
			return jobs.Put(k, b)
		}
		n, err := jobs.NextSequence()
		if err != nil {
			return err
		}
		if err := ids.Put([]byte(r.ID), seqKey(n)); err != nil {
			return err
		}
		if err := jobs.Put(seqKey(n), b); err != nil {
			return err
		}
		gone, err = d.dropOldest(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("jobrec: record of job %s: %v", r.ID, err)
	}
	for _, id := range gone {
		os.RemoveAll(d.outputDir(id))
	}
	return nil
}

// dropOldest removes the oldest ended records past Config.Keep and
// returns their IDs.
func (d *DB) dropOldest(tx *bolt.Tx) ([]string, error) {
	jobs, ids := tx.Bucket(bucketJobs), tx.Bucket(bucketIDs)
	n := 0
	jobs.ForEach(func(k, v []byte) error { n++; return nil })
	var drop [][]byte
	var gone []string
	c := jobs.Cursor()
	for k, v := c.First(); k != nil && n-len(drop) > d.cfg.Keep; k, v = c.Next() {
		r, err := decodeRecord(v)
		if err == nil && r.Ended.IsZero() {
			continue // a job running: kept
		}
		drop = append(drop, k)
		if err == nil {
			gone = append(gone, r.ID)
		}
	}
	for _, k := range drop {
		if err := jobs.Delete(k); err != nil {
			return nil, err
		}
	}
	for _, id := range gone {
		if err := ids.Delete([]byte(id)); err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// Get returns the record of job id.
func (d *DB) Get(id string) (Record, error) {
	var r Record
	err := d.db.View(func(tx *bolt.Tx) error {
		k := tx.Bucket(bucketIDs).Get([]byte(id))
		if k == nil {
			return fmt.Errorf("%w %s", ErrNoRecord, id)
		}
		var err error
		r, err = decodeRecord(tx.Bucket(bucketJobs).Get(k))
		return err
	})
	return r, err
}

// List returns the newest n records (all for n ≤ 0) for which keep says
// true, oldest first. Damaged records are left out.
func (d *DB) List(n int, keep func(Record) bool) ([]Record, error) {
	var out []Record
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			r, err := decodeRecord(v)
			if err != nil || (keep != nil && !keep(r)) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Unended lists the records of jobs that have not ended: at Open, the
// jobs that ran when the daemon stopped.
func (d *DB) Unended() ([]Record, error) {
	return d.List(0, func(r Record) bool { return r.Ended.IsZero() })
}
