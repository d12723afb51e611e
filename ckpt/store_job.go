package ckpt

import (
	"encoding/binary"
	"time"

	"github.com/zeebo/xxh3"
	bolt "go.etcd.io/bbolt"
)

// A job epoch is a consistent cut of a job of several workers: one
// checkpoint per worker, all of the same epoch. It counts only once every
// worker's checkpoint is durable and its commit record is written; a
// resume takes the newest committed epoch whose checkpoints all verify.

var bucketCommits = []byte("commits")

// Commit is the commit record of one job epoch.
type Commit struct {
	Job     string
	Epoch   uint64
	Workers uint32 // the workers 0..Workers-1 whose checkpoints make the epoch
	Created time.Time
}

// A commit record's key is manifestPrefix's job part and the epoch; its
// value is "LHJC" | workers u32 LE | created i64 LE | xxh3-64 of the rest.
const commitMagic = "LHJC"

func commitKey(job string, epoch uint64) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(job)))
	b = append(b, job...)
	return binary.BigEndian.AppendUint64(b, epoch)
}

func encodeCommit(c Commit) []byte {
	b := append([]byte(commitMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], c.Workers)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.Created.UnixNano()))
	return binary.LittleEndian.AppendUint64(b, xxh3.Hash(b))
}

func decodeCommit(job string, epoch uint64, v []byte) (Commit, bool) {
	if len(v) != 24 || string(v[:4]) != commitMagic || xxh3.Hash(v[:16]) != binary.LittleEndian.Uint64(v[16:]) {
		return Commit{}, false
	}
	return Commit{Job: job, Epoch: epoch, Workers: binary.LittleEndian.Uint32(v[4:]),
		Created: time.Unix(0, int64(binary.LittleEndian.Uint64(v[8:])))}, true
}

// CommitJob writes the commit record of c.Epoch, durably: the caller has
// seen every worker's checkpoint of the epoch become durable. Records of
// epochs older than the store keeps are dropped. Failpoint "commit:job".
func (s *Store) CommitJob(c Commit) error {
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCommits)
		if err != nil {
			return err
		}
		if err := b.Put(commitKey(c.Job, c.Epoch), encodeCommit(c)); err != nil {
			return err
		}
		old := commitEpochs(tx, c.Job)
		for len(old) > s.cfg.Keep {
			if err := b.Delete(commitKey(c.Job, old[0])); err != nil {
				return err
			}
			old = old[1:]
		}
		return fail("commit:job")
	})
	return deleteErr(Key{Job: c.Job}, "commit of epoch "+itoa(c.Epoch), err)
}

// Commits lists the job's commit records, oldest first. A record that does
// not decode is left out: its epoch does not count.
func (s *Store) Commits(job string) ([]Commit, error) {
	var out []Commit
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommits)
		if b == nil {
			return nil
		}
		for _, e := range commitEpochs(tx, job) {
			if c, ok := decodeCommit(job, e, b.Get(commitKey(job, e))); ok {
				out = append(out, c)
			}
		}
		return nil
	})
	return out, err
}

// DeleteCommitsAfter drops the job's commit records of epochs newer than
// epoch (0: all of them).
func (s *Store) DeleteCommitsAfter(job string, epoch uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommits)
		if b == nil {
			return nil
		}
		for _, e := range commitEpochs(tx, job) {
			if e > epoch {
				if err := b.Delete(commitKey(job, e)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return deleteErr(Key{Job: job}, "delete commit records", err)
}

// commitEpochs lists the epochs with a commit record of job, in order.
func commitEpochs(tx *bolt.Tx, job string) []uint64 {
	b := tx.Bucket(bucketCommits)
	if b == nil {
		return nil
	}
	prefix := commitKey(job, 0)
	prefix = prefix[:len(prefix)-8]
	var out []uint64
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		out = append(out, binary.BigEndian.Uint64(k[len(prefix):]))
	}
	return out
}
