package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/librahost/librahost/host/node"
)

// clientFlags are the flags of commands that talk to hosts.
type clientFlags struct {
	hosts, cluster, as *string
}

func addClientFlags(fs interface {
	String(name, value, usage string) *string
}) clientFlags {
	return clientFlags{
		hosts:   fs.String("hosts", os.Getenv("LIBRAHOST_HOSTS"), "control `addresses` of the hosts, comma-separated (default $LIBRAHOST_HOSTS)"),
		cluster: fs.String("cluster", os.Getenv("LIBRAHOST_CLUSTER"), "cluster `directory` (default $LIBRAHOST_CLUSTER)"),
		as:      fs.String("as", "", "the host `name` whose certificate to present (default: this machine's, else the first in --cluster)"),
	}
}

func (c clientFlags) addrs() []string {
	var out []string
	for _, a := range strings.Split(*c.hosts, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (c clientFlags) client() node.Client {
	return node.Client{ClusterDir: *c.cluster, As: *c.as}
}

func cmdSubmit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("submit", stderr)
	cf := addClientFlags(fs)
	n := fs.Int("n", 1, "number of `workers` (ranks 0..N-1, placed round-robin on --hosts)")
	prefix := fs.Bool("prefix", false, "start each line a worker prints with [rank]")
	failTimeout := fs.Duration("failure-timeout", 0, "how long a host of the job may be silent before it is declared dead (default: each host's --failure-timeout, 2s unless set)")
	every := fs.Duration("checkpoint-every", 0, "take a coordinated checkpoint of the job at this `interval` (each rank's kept in its host's --data)")
	replicas := fs.Int("replicas", 1, "other `hosts` that keep a copy of each rank's checkpoint (with --checkpoint-every)")
	overhead := overheadVar(fs)
	resume := fs.String("resume", "", "continue `JOB`, stopped when its coordinator's host was lost, on the --hosts that hold its checkpoints (no module: they kept it)")
	detach := fs.Bool("detach", false, "print the job's ID and return: the first of --hosts submits the job and it runs on without this process (librahost attach JOB, logs JOB)")
	var envs, dirs listFlag
	fs.Var(&envs, "env", "set a guest environment variable: K=V (repeatable)")
	fs.Var(&dirs, "dir", "mount a directory that exists on every host (relative: from each host's working directory): HOST:GUEST[:ro], a read-only one the same on every host (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost submit --hosts A,B,C [-n N] [--cluster DIR] [--dir HOST:GUEST[:ro]]... [--detach] [--failure-timeout DUR] [--checkpoint-every DUR [--replicas R]] app.wasm [--] [guest args]")
		fmt.Fprintln(stderr, "       librahost submit --resume JOB --hosts B,C [--cluster DIR] [--prefix] [--failure-timeout DUR]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if *resume != "" {
		return submitResume(fs, cf, *resume, *prefix, *failTimeout, stdout, stderr)
	}
	if len(rest) == 0 || len(cf.addrs()) == 0 || *cf.cluster == "" {
		fs.Usage()
		return errUsage
	}
	if err := checkWorkers(*n); err != nil {
		return err
	}
	if *detach && *prefix {
		return errors.New("--prefix with --detach: a detached job prints nothing here; give --prefix to attach or logs")
	}
	given, replicasGiven := false, false
	fs.Visit(func(f *flag.Flag) {
		given = given || f.Name == "failure-timeout"
		replicasGiven = replicasGiven || f.Name == "replicas"
	})
	if err := checkSubmitCheckpoints(*every, *replicas, replicasGiven, len(cf.addrs())); err != nil {
		return err
	}
	if *every == 0 {
		*replicas = 0
	}
	if given {
		if err := checkFailureTimeout(*failTimeout); err != nil {
			return err
		}
	}
	module, guestArgs := splitGuest(rest)
	if err := checkEnvs(envs); err != nil {
		return err
	}
	mounts, err := parseMountSpecs(dirs)
	if err != nil {
		return err
	}
	module, err = moduleFor(module, stderr)
	if err != nil {
		return err
	}
	wasm, err := os.ReadFile(module)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		return fmt.Errorf("%s is not a WebAssembly module", module)
	}
	cfg := node.SubmitConfig{
		Client:     cf.client(),
		Hosts:      cf.addrs(),
		N:          *n,
		Module:     wasm,
		ModuleName: filepath.Base(module),
		Args:       append([]string{guestName(rest[0])}, guestArgs...),
		Env:        envs,
		Prefix:     *prefix,
		Stdout:     stdout,
		Stderr:     stderr,
		Progress:   stderr,

		FailureTimeout:     *failTimeout,
		CheckpointEvery:    *every,
		CheckpointOverhead: float64(*overhead),
		Replicas:           *replicas,
		Mounts:             mounts,
	}
	if *detach {
		return submitDetached(cfg, stdout, stderr)
	}
	return withSignals(stopClean, stderr, func(stop chan struct{}) (int, error) {
		cfg.Stop = stop
		return node.Submit(context.Background(), cfg)
	})
}

// defaultFailureTimeout is how long a host of a job may be silent before
// it is declared dead, unless --failure-timeout says otherwise.
const defaultFailureTimeout = 2 * time.Second

// checkFailureTimeout refuses a --failure-timeout that is not positive.
func checkFailureTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--failure-timeout %v: want more than 0, e.g. 2s (how long a host of a job may be silent before it is declared dead)", d)
	}
	return nil
}

// checkSubmitCheckpoints refuses --checkpoint-every and --replicas values
// that cannot work on a job over hosts hosts.
func checkSubmitCheckpoints(every time.Duration, replicas int, replicasGiven bool, hosts int) error {
	switch {
	case every < 0:
		return fmt.Errorf("--checkpoint-every %v: want more than 0, e.g. 1s", every)
	case replicasGiven && every == 0:
		return fmt.Errorf("--replicas %d without --checkpoint-every: a job without checkpoints keeps no replicas", replicas)
	case replicas < 1 && every > 0:
		return fmt.Errorf("--replicas %d: want 1 or more (other hosts keeping a copy of each rank's checkpoint)", replicas)
	case every > 0 && hosts > 1 && replicas > hosts-1:
		return fmt.Errorf("--replicas %d: a job on %d hosts can keep each checkpoint on at most %d other hosts", replicas, hosts, hosts-1)
	}
	return nil
}
