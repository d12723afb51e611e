package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/librahost/librahost/ckpt"
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

// ListCheckpoints lists the checkpoints held in stateDir, oldest first.
func ListCheckpoints(stateDir string) ([]CheckpointInfo, error) {
	st, rec, err := openReadOnly(stateDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if rec.N > 1 {
		return listJobEpochs(st, rec)
	}
	infos, err := st.Epochs(ckpt.Key{Job: rec.Job})
	if err != nil {
		return nil, err
	}
	out := make([]CheckpointInfo, 0, len(infos))
	for _, in := range infos {
		out = append(out, CheckpointInfo{
			Epoch: in.Epoch, Created: in.Created, MemSize: in.MemSize,
			StoredBytes: in.StoredBytes, NewBytes: in.NewBytes,
			ModuleDigest: digestHex(in.Binding.ModuleDigest),
		})
	}
	return out, nil
}

// Inspection is `librahost ckpt inspect`: ordered name/value pairs.
type Inspection struct {
	Fields [][2]string
}

// InspectCheckpoint describes one checkpoint of stateDir (0: the newest).
func InspectCheckpoint(stateDir string, epoch uint64) (*Inspection, error) {
	st, rec, err := openReadOnly(stateDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if rec.N > 1 {
		return inspectJobEpoch(st, rec, stateDir, epoch)
	}
	key := ckpt.Key{Job: rec.Job}
	if epoch == 0 {
		infos, err := st.Epochs(key)
		if err != nil {
			return nil, err
		}
		if len(infos) == 0 {
			return nil, fmt.Errorf("%w: state dir %s holds no checkpoint", ErrNoCheckpoint, stateDir)
		}
		epoch = infos[len(infos)-1].Epoch
	}
	m, err := st.Manifest(key, epoch)
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
	add("run", describeRun(hostRun(m.Host)))
	add("wazero", m.Binding.Wazero)
	add("guest go", m.Binding.Go)
	add("format", strconv.FormatUint(uint64(m.Format), 10))
	add("memory", FormatBytes(m.MemSize))
	add("chunks", fmt.Sprintf("%d of %s (%d zero, %d changed since the previous)", len(m.Chunks), FormatBytes(uint64(m.ChunkSize)), m.Stats.Zero, m.Stats.Changed))
	add("stored", FormatBytes(m.StoredBytes))
	add("written by this epoch", FormatBytes(uint64(m.Stats.BytesStored)))
	add("guest pause", m.Stats.PauseDur.String())
	add("globals", strconv.Itoa(len(m.Globals)))
	var hs hostState
	if json.Unmarshal(m.Host, &hs) == nil {
		add("kind", hs.Kind)
		add("guest clock", time.Duration(hs.Clock).String())
		add("stdout position", strconv.FormatInt(hs.Stdout, 10))
		add("stderr position", strconv.FormatInt(hs.Stderr, 10))
		add("wasi state", FormatBytes(uint64(len(hs.WASI))))
	}
	add("verify", verify)
	return d, nil
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
