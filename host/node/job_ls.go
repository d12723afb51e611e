package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// JobEpoch is a committed epoch of a job over several hosts as one host's
// --data directory holds it.
type JobEpoch struct {
	Epoch   uint64
	Created time.Time
	Workers int
	Ranks   []int  // ranks whose checkpoint of the epoch is here: run here, or replicas
	Stored  uint64 // bytes the store holds for those checkpoints
}

// ListJobCheckpoints lists the committed epochs of job id in a host's
// --data directory, oldest first; id "" means its only job with
// checkpoints. It returns the job's ID.
func ListJobCheckpoints(dataDir, id string) (string, []JobEpoch, error) {
	if id == "" {
		ents, err := os.ReadDir(filepath.Join(dataDir, "jobs"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("node: %v", err)
		}
		var ids []string
		for _, e := range ents {
			if e.IsDir() {
				ids = append(ids, e.Name())
			}
		}
		switch len(ids) {
		case 0:
			return "", nil, fmt.Errorf("node: %s holds no checkpoints of a job over several hosts", dataDir)
		case 1:
			id = ids[0]
		default:
			return "", nil, fmt.Errorf("node: %s holds checkpoints of %d jobs (%s): name one with --job", dataDir, len(ids), strings.Join(ids, ", "))
		}
	}
	dir := jobDir(dataDir, id)
	if _, err := os.Stat(filepath.Join(dir, "ckpt.db")); err != nil {
		return id, nil, fmt.Errorf("node: %s holds no checkpoints of job %s", dataDir, id)
	}
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(dir, "ckpt.db")})
	if err != nil {
		return id, nil, err
	}
	defer store.Close()
	commits, err := store.Commits(shareKeyJob)
	if err != nil {
		return id, nil, err
	}
	keys, err := store.Keys()
	if err != nil {
		return id, nil, err
	}
	held := map[uint64]*JobEpoch{}
	var out []JobEpoch
	for _, c := range commits {
		out = append(out, JobEpoch{Epoch: c.Epoch, Created: c.Created, Workers: int(c.Workers)})
	}
	for i := range out {
		held[out[i].Epoch] = &out[i]
	}
	for _, k := range keys {
		if k.Job != shareKeyJob {
			continue
		}
		infos, err := store.Epochs(k)
		if err != nil {
			continue
		}
		for _, in := range infos {
			if je := held[in.Epoch]; je != nil {
				je.Ranks = append(je.Ranks, int(k.Worker))
				je.Stored += in.NewBytes
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].Ranks)
	}
	return id, out, nil
}
