package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
)

// CheckpointInfo is one line of `librahost ckpt ls`.
type CheckpointInfo struct {
	Epoch        uint64
	Created      time.Time
	MemSize      uint64
	StoredBytes  uint64
	NewBytes     uint64
	ModuleDigest string
	Workers      int // a job epoch's: its sizes are the sums over its workers
}

// ListCheckpoints lists the committed checkpoints held in stateDir,
// oldest first; a job's sizes are the sums over its workers.
func ListCheckpoints(stateDir string) ([]CheckpointInfo, error) {
	st, rec, commits, err := openCommitted(stateDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []CheckpointInfo
	for _, c := range commits {
		ci := CheckpointInfo{Epoch: c.Epoch, Created: c.Created, ModuleDigest: rec.Digest}
		if c.Workers > 1 {
			ci.Workers = int(c.Workers)
		}
		for r := range int(c.Workers) {
			m, err := st.Manifest(ckpt.Key{Job: rec.Job, Worker: uint32(r)}, c.Epoch)
			if err != nil {
				continue
			}
			ci.MemSize += m.MemSize
			ci.StoredBytes += m.StoredBytes
			ci.NewBytes += uint64(m.Stats.BytesStored)
			ci.ModuleDigest = digestHex(m.Binding.ModuleDigest)
		}
		out = append(out, ci)
	}
	return out, nil
}

// Inspection is `librahost ckpt inspect`: ordered name/value pairs.
type Inspection struct {
	Fields [][2]string
}

// InspectCheckpoint describes one committed checkpoint of stateDir (0:
// the newest): a job's with a line per worker, a run's in full.
func InspectCheckpoint(stateDir string, epoch uint64) (*Inspection, error) {
	st, rec, commits, err := openCommitted(stateDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var c *ckpt.Commit
	for i := range commits {
		if epoch == 0 || commits[i].Epoch == epoch {
			c = &commits[i]
		}
	}
	switch {
	case c == nil && epoch == 0:
		return nil, fmt.Errorf("%w: state dir %s holds no checkpoint", ErrNoCheckpoint, stateDir)
	case c == nil:
		return nil, fmt.Errorf("%w: checkpoint %d of the state dir %s was not committed", ErrNoCheckpoint, epoch, stateDir)
	case c.Workers > 1:
		return inspectJobEpoch(st, rec, *c), nil
	}
	m, err := st.Manifest(ckpt.Key{Job: rec.Job}, c.Epoch)
	if err != nil {
		return nil, err
	}
	verify := "ok"
	if err := st.Verify(m); err != nil {
		verify = err.Error()
	}
	d := &Inspection{}
	add := func(k, v string) { d.Fields = append(d.Fields, [2]string{k, v}) }
	add("epoch", strconv.FormatUint(m.Epoch, 10))
	add("created", m.Created.Local().Format(time.RFC3339))
	add("module", rec.Module)
	add("module digest", digestHex(m.Binding.ModuleDigest))
	rc, _, rerr := decodeRankCheckpoint(m.Host, 0)
	if rerr == nil {
		add("run", describeRun(rc.Run))
	} else {
		add("run", rerr.Error())
	}
	add("wazero", m.Binding.Wazero)
	add("guest go", m.Binding.Go)
	add("format", strconv.FormatUint(uint64(m.Format), 10))
	add("memory", host.FormatBytes(m.MemSize))
	add("chunks", fmt.Sprintf("%d of %s (%d zero, %d changed since the previous)", len(m.Chunks), host.FormatBytes(uint64(m.ChunkSize)), m.Stats.Zero, m.Stats.Changed))
	add("stored", host.FormatBytes(m.StoredBytes))
	add("written by this epoch", host.FormatBytes(uint64(m.Stats.BytesStored)))
	add("guest pause", m.Stats.PauseDur.String())
	add("globals", strconv.Itoa(len(m.Globals)))
	if rerr == nil {
		if si, err := host.ParseState(rc.Worker); err == nil {
			add("kind", si.Kind)
			add("guest clock", si.Clock.String())
			add("stdout position", strconv.FormatInt(si.Stdout, 10))
			add("stderr position", strconv.FormatInt(si.Stderr, 10))
			add("wasi state", host.FormatBytes(uint64(si.WASI)))
		}
	}
	add("verify", verify)
	return d, nil
}

// openCommitted opens stateDir's store and run record to read them, with
// its committed epochs.
func openCommitted(stateDir string) (*ckpt.Store, *runRecord, []ckpt.Commit, error) {
	st, rec, err := openReadOnly(stateDir)
	if err != nil {
		return nil, nil, nil, err
	}
	commits, err := committed(st, rec)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, rec, commits, nil
}

func openReadOnly(stateDir string) (*ckpt.Store, *runRecord, error) {
	rec, err := readRecord(stateDir)
	noRun := fmt.Errorf("%w: state dir %s holds no run", ErrNoCheckpoint, stateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	path := filepath.Join(stateDir, storeFile)
	if rec == nil {
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			return nil, nil, noRun
		}
	}
	st, err := ckpt.Open(ckpt.Config{Path: path})
	if err != nil {
		return nil, nil, err
	}
	if rec == nil { // lost: the checkpoints say what run they are of
		if rec, err = recordFromStore(st, stateDir); rec == nil {
			st.Close()
			if err == nil {
				err = noRun
			}
			return nil, nil, err
		}
	}
	return st, rec, nil
}
