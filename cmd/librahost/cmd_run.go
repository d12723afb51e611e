package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/librahost/librahost/host/job"
)

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	var dirs, envs listFlag
	fs.Var(&dirs, "dir", "mount a host directory: HOST:GUEST[:ro] (repeatable)")
	fs.Var(&envs, "env", "set a guest environment variable: K=V (repeatable)")
	state := fs.String("state", "", "state directory for checkpoints (default <app>.libra when checkpointing)")
	every := fs.Duration("checkpoint-every", 0, "take a checkpoint at this interval (e.g. 10s)")
	overhead := overheadVar(fs)
	resume := fs.Bool("resume", false, "continue the run held in --state from its newest good checkpoint")
	keep := fs.Int("keep", 3, "checkpoints kept in --state (each older one is deleted)")
	verbose := fs.Bool("v", false, "print a line per checkpoint")
	deterministic := fs.Bool("deterministic", false, "clocks and random numbers from --seed, so a run replays exactly")
	seed := fs.Uint64("seed", 0, "seed of --deterministic")
	n := fs.Int("n", 1, "run `N` workers of the module on this machine (ranks 0..N-1)")
	prefix := fs.Bool("prefix", false, "start each line a worker prints with [rank]")
	httpAddr := fs.String("http", "", "TCP `address` (host:port) serving the job's dashboard at / and Prometheus metrics at /metrics while it runs; anyone who reaches it may read them")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost run [flags] app.wasm [--] [guest args]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 && !*resume {
		fs.Usage()
		return errUsage
	}
	if err := checkRunFlags(fs, *n, int64(*every), *deterministic); err != nil {
		return err
	}
	module, guestArgs := splitGuest(rest)
	if module != "" {
		var err error
		if module, err = moduleFor(module, stderr); err != nil {
			return err
		}
	}
	if *keep < 1 {
		return fmt.Errorf("--keep %d: keep at least 1 checkpoint", *keep)
	}
	mounts, err := parseMounts(dirs)
	if err != nil {
		return err
	}
	if *n > 1 && module != "" {
		if err := checkJob(*n, module); err != nil {
			return err
		}
	}
	if err := checkEnvs(envs); err != nil {
		return err
	}
	if *httpAddr != "" {
		if err := checkHTTPAddr(*httpAddr); err != nil {
			return err
		}
	}
	if *state == "" && (*every > 0 || *resume) {
		if module == "" {
			return errors.New("--resume needs --state or the module")
		}
		*state = strings.TrimSuffix(filepath.Base(rest[0]), filepath.Ext(rest[0])) + ".libra"
	}
	var argv []string // a resume takes the record's
	if module != "" {
		argv = append([]string{guestName(rest[0])}, guestArgs...)
	}
	cfg := job.Config{
		ModulePath:         module,
		N:                  *n,
		Args:               argv,
		Env:                envs,
		Mounts:             mounts,
		Prefix:             *prefix,
		Deterministic:      *deterministic,
		Seed:               *seed,
		StateDir:           *state,
		CheckpointEvery:    *every,
		CheckpointOverhead: float64(*overhead),
		Resume:             *resume,
		Verbose:            *verbose,
		Keep:               *keep,
	}
	if *httpAddr != "" {
		stop, err := serveRunHTTP(&cfg, *httpAddr, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	return runJob(cfg, stdout, stderr)
}

// runJob runs a job on this machine (a run is a job of one) with the
// process's streams and signals: Ctrl-C or SIGTERM takes a final
// checkpoint and exits.
func runJob(cfg job.Config, stdout, stderr io.Writer) error {
	cfg.Stdin = os.Stdin
	cfg.Stdout, cfg.Stderr, cfg.Log = stdout, stderr, stderr
	cfg.CacheDir = cacheDir("wazero")
	var mode stopMode
	switch {
	case cfg.StateDir != "":
		mode = stopCheckpoint
	case cfg.N > 1:
		// A job without checkpoints still stops cleanly: its ranks' last
		// lines are written out.
		mode = stopClean
	default:
		mode = stopNow // nothing to save
	}
	return withSignals(mode, stderr, func(stop chan struct{}) (int, error) {
		cfg.Stop = stop
		return job.Run(context.Background(), cfg)
	})
}

func parseMounts(dirs []string) ([]job.Mount, error) {
	out, err := parseMountSpecs(dirs)
	if err != nil {
		return nil, err
	}
	for i, m := range out {
		if fi, err := os.Stat(m.HostPath); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--dir %q: %s is not a directory", dirs[i], m.HostPath)
		}
	}
	return out, nil
}

// parseMountSpecs parses --dir values without looking at the host paths
// (those of `submit` are on the job's hosts).
func parseMountSpecs(dirs []string) ([]job.Mount, error) {
	var out []job.Mount
	for _, d := range dirs {
		parts := strings.Split(d, ":")
		m := job.Mount{HostPath: parts[0], GuestPath: parts[0]}
		switch {
		case len(parts) == 2:
			m.GuestPath = parts[1]
		case len(parts) == 3 && parts[2] == "ro":
			m.GuestPath, m.ReadOnly = parts[1], true
		case len(parts) != 1:
			return nil, fmt.Errorf("--dir %q: want HOST:GUEST[:ro]", d)
		}
		if m.HostPath == "" || m.GuestPath == "" {
			return nil, fmt.Errorf("--dir %q: want HOST:GUEST[:ro]", d)
		}
		out = append(out, m)
	}
	if err := checkMounts(out); err != nil {
		return nil, err
	}
	return out, nil
}

// cacheDir is librahost's cache directory for sub, or "" if there is none.
func cacheDir(sub string) string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "librahost", sub)
}
