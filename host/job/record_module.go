package job

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// loadModule reads the module and the run record: a new one for a run, the
// saved one for a resume (rebuilt from the checkpoints if it was lost).
func (j *jobRun) loadModule() ([]byte, error) {
	cfg := &j.cfg
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("job: state dir: %w", err)
		}
		lock, err := lockDir(cfg.StateDir)
		if err != nil {
			return nil, err
		}
		j.lock = lock
	}
	var old *runRecord
	if cfg.StateDir != "" {
		r, err := readRecord(cfg.StateDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if r == nil {
			// A lost record must not lose the checkpoints with it.
			if r, err = j.rebuildRecord(); err != nil {
				return nil, err
			}
		}
		old = r
	}
	path := cfg.ModulePath
	if path == "" {
		if cfg.StateDir == "" || old == nil {
			return nil, fmt.Errorf("%w: state dir %s holds no run", ErrNoCheckpoint, cfg.StateDir)
		}
		path = filepath.Join(cfg.StateDir, moduleFile)
	}
	module, err := os.ReadFile(path)
	if err != nil {
		if cfg.ModulePath == "" {
			return nil, moduleCopyError(cfg.StateDir, old, "is missing")
		}
		return nil, fmt.Errorf("job: %w", err)
	}
	digest := digestHex(sha256.Sum256(module))
	if cfg.Resume && old == nil && cfg.ModulePath != "" {
		// Killed before the run was recorded: the guest never ran.
		j.logf("nothing to resume in %s; starting the run", cfg.StateDir)
		cfg.Resume = false
	}
	if cfg.Resume && old != nil {
		if err := j.checkModuleCopy(old, digest, module); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.Resume && old == nil:
		return nil, fmt.Errorf("%w: state dir %s holds no run to resume", ErrNoCheckpoint, cfg.StateDir)
	case cfg.Resume && old.Digest != digest:
		return nil, fmt.Errorf("job: state dir %s holds a run of another module (%s); refusing to resume it with %s", cfg.StateDir, displayName(old.Module), path)
	case cfg.Resume && old.Finished:
		j.rec = old
		return module, errFinished
	case cfg.Resume:
		j.rec = old
		if old.RunID == "" { // a record made before runs were bound
			old.RunID = newRunID()
		}
		return module, nil
	case old != nil && !old.Finished:
		what := "an unfinished run of " + displayName(old.Module)
		if old.Digest != digest {
			what = "an unfinished run of another module (" + displayName(old.Module) + ")"
		}
		return nil, fmt.Errorf("%w: state dir %s holds %s, last checkpoint %d; use --resume to continue it, or another --state", ErrUnfinished, cfg.StateDir, what, old.Epoch)
	}
	j.rec = &runRecord{
		RunID: newRunID(),
		runSpec: runSpec{Module: path, Args: cfg.Args, Env: cfg.Env, Mounts: mountsToJSON(cfg.Mounts),
			Deterministic: cfg.Deterministic, Seed: cfg.Seed},
		Digest:  digest,
		Job:     jobName,
		Started: time.Now().UTC(),
	}
	if cfg.StateDir != "" {
		if abs, err := filepath.Abs(path); err == nil {
			j.rec.Module = abs
		}
		if err := writeFileAtomic(filepath.Join(cfg.StateDir, moduleFile), module); err != nil {
			return nil, err
		}
	}
	return module, nil
}

func displayName(path string) string { return filepath.Base(path) }

func mountsToJSON(ms []Mount) []mountJSON {
	out := mountsAsGiven(ms)
	for i := range out {
		if abs, err := filepath.Abs(out[i].Host); err == nil {
			out[i].Host = abs
		}
	}
	return out
}

// mountsAsGiven is mountsToJSON without making the host paths absolute.
func mountsAsGiven(ms []Mount) []mountJSON {
	var out []mountJSON
	for _, m := range ms {
		out = append(out, mountJSON{Host: m.HostPath, Guest: m.GuestPath, ReadOnly: m.ReadOnly})
	}
	return out
}

func mountsFromJSON(ms []mountJSON) []Mount {
	var out []Mount
	for _, m := range ms {
		out = append(out, Mount{HostPath: m.Host, GuestPath: m.Guest, ReadOnly: m.ReadOnly})
	}
	return out
}
