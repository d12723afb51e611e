package job

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/librahost/librahost/ckpt"
)

// rebuildRecord rebuilds a lost run record from the store, so that
// losing run.json loses no checkpoint. It returns nil if the store holds
// no checkpoint. The store it opens is kept for the job.
func (j *jobRun) rebuildRecord() (*runRecord, error) {
	st, err := j.openStore()
	if st == nil {
		return nil, err
	}
	rec, err := recordFromStore(st, j.cfg.StateDir)
	if rec != nil {
		fmt.Fprintf(j.cfg.Log, "librahost: warning: %s; rebuilt it from checkpoint %d\n", lostRecord(j.cfg.StateDir), rec.Epoch)
	}
	return rec, err
}

// openStore opens the state dir's store for the checks before the
// job's own opening, which then uses it; nil if there is none.
func (j *jobRun) openStore() (*ckpt.Store, error) {
	if j.store != nil {
		return j.store, nil
	}
	path := filepath.Join(j.cfg.StateDir, storeFile)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil, nil
	}
	st, err := ckpt.Open(ckpt.Config{Path: path, Keep: j.cfg.Keep})
	if err != nil {
		return nil, err
	}
	j.store = st
	return st, nil
}

// newestManifest is the newest readable checkpoint of worker 0 in st, or nil.
func newestManifest(st *ckpt.Store) (*ckpt.Manifest, error) {
	keys, err := st.Keys()
	if err != nil {
		return nil, err
	}
	var m *ckpt.Manifest
	for _, k := range keys {
		if k.Worker != 0 {
			continue
		}
		infos, err := st.Epochs(k)
		if err != nil {
			return nil, err
		}
		for i := len(infos) - 1; i >= 0 && m == nil; i-- {
			m, _ = st.Manifest(k, infos[i].Epoch)
		}
	}
	return m, nil
}

// recordDigestDamaged reports whether the module digest the checkpoints
// are bound to is digest, though the run record names another: the
// record, not the module, is damaged.
func (j *jobRun) recordDigestDamaged(digest string) bool {
	st, _ := j.openStore()
	if st == nil {
		return false
	}
	m, _ := newestManifest(st)
	return m != nil && digestHex(m.Binding.ModuleDigest) == digest
}

// recordDamaged is the refusal of a run record that does not match its
// checkpoints.
func recordDamaged(dir, what string) error {
	return fmt.Errorf("%w: the run record %s does not match its checkpoints (%s): it is damaged; remove it and resume again to rebuild it from the checkpoints",
		ErrDamagedState, filepath.Join(dir, recordFile), what)
}

func lostRecord(dir string) string {
	return fmt.Sprintf("state dir %s holds checkpoints but has lost its run record (%s)", dir, recordFile)
}

// recordFromStore rebuilds a run record from the run binding of the
// newest readable checkpoint in st; nil if st holds none. Checkpoints that
// cannot rebuild it are refused in one line.
func recordFromStore(st *ckpt.Store, dir string) (*runRecord, error) {
	keys, err := st.Keys()
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	m, err := newestManifest(st)
	if err != nil {
		return nil, err
	}
	lost := lostRecord(dir)
	if m == nil {
		return nil, fmt.Errorf("%w: %s, and no checkpoint is readable to rebuild it from; restore %s from a backup, or use another --state", ErrDamagedState, lost, recordFile)
	}
	raw := hostRun(m.Host)
	if raw == nil {
		return nil, fmt.Errorf("%w: %s, and its checkpoints were made by an earlier librahost that does not record the run in them; restore %s from a backup, or use another --state", ErrDamagedState, lost, recordFile)
	}
	var b runBinding
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%w: %s, and checkpoint %d's run binding is damaged (%v); restore %s from a backup, or use another --state", ErrDamagedState, lost, m.Epoch, err, recordFile)
	}
	return &runRecord{RunID: b.ID, runSpec: b.runSpec, Digest: digestHex(m.Binding.ModuleDigest),
		Job: m.Job, Started: m.Created, Epoch: m.Epoch}, nil
}

// checkModuleCopy checks the state dir's copy of the module against the
// run record when resuming. A copy that does not match is damaged: with
// the module given on the command line (digest, matching the record) it is
// repaired; without, the resume is refused in one line.
func (j *jobRun) checkModuleCopy(rec *runRecord, digest string, module []byte) error {
	dir := j.cfg.StateDir
	if digest != rec.Digest && j.recordDigestDamaged(digest) {
		return recordDamaged(dir, "module digest")
	}
	if j.cfg.ModulePath == "" {
		if digest != rec.Digest {
			return moduleCopyError(dir, rec, "is damaged (its SHA-256 does not match the run record)")
		}
		return nil
	}
	if digest != rec.Digest {
		return nil // another module: refused by the caller
	}
	copyPath := filepath.Join(dir, moduleFile)
	if b, err := os.ReadFile(copyPath); err == nil && digestHex(sha256.Sum256(b)) == digest {
		return nil
	}
	if err := writeFileAtomic(copyPath, module); err != nil {
		return err
	}
	fmt.Fprintf(j.cfg.Log, "librahost: warning: the copy of the module in %s was damaged or missing; repaired it from %s\n", copyPath, j.cfg.ModulePath)
	return nil
}

// moduleCopyError refuses a resume whose copy of the module is missing or
// damaged, saying how to repair it.
func moduleCopyError(dir string, rec *runRecord, what string) error {
	name := "app.wasm"
	if rec != nil && rec.Module != "" {
		name = rec.Module
	}
	return fmt.Errorf("%w: the copy of the module in %s %s; give the module again to repair it: `librahost run --resume --state %s %s`",
		ErrDamagedState, filepath.Join(dir, moduleFile), what, dir, name)
}
