package job

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Files of a state directory.
const (
	recordFile  = "run.json"
	moduleFile  = "module.wasm"
	storeFile   = "ckpt.db"
	ledgerFile  = "output.ledger"
	journalFile = "files.journal"
	lockFile    = "lock"
)

// runRecord describes the run a state directory holds.
type runRecord struct {
	RunID string `json:"run_id,omitempty"` // made at the first start; in every checkpoint
	runSpec
	Digest   string       `json:"digest"` // hex SHA-256 of the module
	Job      string       `json:"job"`
	Started  time.Time    `json:"started"`
	Finished bool         `json:"finished"`
	Exit     int          `json:"exit_code"`
	Epoch    uint64       `json:"last_epoch"`
	Pid      int          `json:"pid"`
	Extra    *recordExtra `json:"extra,omitempty"`
}

// runSpec is what a run was started with: in its record and in each of
// its checkpoints (runBinding).
type runSpec struct {
	Module        string      `json:"module"` // the path it was started from
	Args          []string    `json:"args"`
	Env           []string    `json:"env,omitempty"`
	Mounts        []mountJSON `json:"mounts,omitempty"`
	Deterministic bool        `json:"deterministic,omitempty"`
	Seed          uint64      `json:"seed,omitempty"`
	N             int         `json:"n,omitempty"`      // workers of a job; 0 or 1: a single run
	Prefix        bool        `json:"prefix,omitempty"` // a job's lines start with [rank]
}

type recordExtra struct {
	CheckpointEvery string `json:"checkpoint_every,omitempty"`
}

type mountJSON struct {
	Host     string `json:"host"`
	Guest    string `json:"guest"`
	ReadOnly bool   `json:"ro,omitempty"`
}

func digestHex(d [32]byte) string { return hex.EncodeToString(d[:]) }

func readRecord(dir string) (*runRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: the run record %s is damaged (%v); remove it and resume again to rebuild it from the checkpoints",
			ErrDamagedState, filepath.Join(dir, recordFile), err)
	}
	return &r, nil
}

// writeRecord replaces the record atomically.
func writeRecord(dir string, r *runRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, recordFile), append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("job: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("job: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("job: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("job: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("job: %w", err)
	}
	return nil
}

// lockDir takes the state directory's lock, so that two librahost
// processes never run the same state.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("job: state dir %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("job: state dir %s is in use by another librahost process", dir)
	}
	return f, nil
}
