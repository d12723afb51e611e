package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/librahost/librahost/ckpt"
)

// errJobRecord: a rebuilt run record is a job's; the session hands over
// to RunJob.
var errJobRecord = errors.New("host: the state dir holds a job")

// rebuildRecord rebuilds a lost run record from the run binding of the
// newest readable checkpoint in the store, so that losing run.json loses
// no checkpoint. It returns nil if the store holds no checkpoint, and
// refuses in one line if it holds checkpoints that cannot rebuild it. The
// store it opens is kept for the session.
func (s *Session) rebuildRecord() (*runRecord, error) {
	dir := s.cfg.StateDir
	path := filepath.Join(dir, storeFile)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil, nil
	}
	st, err := ckpt.Open(ckpt.Config{Path: path, Keep: s.cfg.Keep})
	if err != nil {
		return nil, err
	}
	s.store = st
	keys, err := st.Keys()
	if err != nil || len(keys) == 0 {
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
	lost := fmt.Sprintf("state dir %s holds checkpoints but has lost its run record (%s)", dir, recordFile)
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
	fmt.Fprintf(s.cfg.Log, "librahost: warning: %s; rebuilt it from checkpoint %d\n", lost, m.Epoch)
	return &runRecord{RunID: b.ID, runSpec: b.runSpec, Digest: digestHex(m.Binding.ModuleDigest),
		Job: m.Job, Started: m.Created, Epoch: m.Epoch}, nil
}

// checkModuleCopy checks the state dir's copy of the module against the
// run record when resuming. A copy that does not match is damaged: with
// the module given on the command line (digest, matching the record) it is
// repaired; without, the resume is refused in one line.
func (s *Session) checkModuleCopy(rec *runRecord, digest string, module []byte) error {
	dir := s.cfg.StateDir
	if s.cfg.ModulePath == "" {
		if digest != rec.Digest {
			return moduleCopyError(dir, rec, "is damaged (its SHA-256 does not match the run record)")
		}
		return nil
	}
	if digest != rec.Digest {
		return nil // another module: refused by the caller
	}
	copyPath := filepath.Join(dir, moduleFile)
	if b, err := os.ReadFile(copyPath); err == nil && digestHex(sha256Sum(b)) == digest {
		return nil
	}
	if err := writeFileAtomic(copyPath, module); err != nil {
		return err
	}
	fmt.Fprintf(s.cfg.Log, "librahost: warning: the copy of the module in %s was damaged or missing; repaired it from %s\n", copyPath, s.cfg.ModulePath)
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
