package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/librahost/librahost/host/job"
)

const usage = `librahost runs WebAssembly programs with transparent checkpoints.

Usage:
  librahost build [-o out.wasm] <Go package dir | file.c ... | app.wasm>
  librahost run [flags] app.wasm [--] [guest args]
  librahost checkpoint --state DIR
  librahost restore --state DIR [--epoch N]
  librahost ckpt ls --state DIR
  librahost ckpt inspect --state DIR [--epoch N]
  librahost ckpt verify|repair --state DIR
  librahost cluster init DIR --hosts "a b=10.0.0.2 c"
  librahost host --listen ADDR --data DIR --cluster DIR [--name NAME] [--http ADDR] [--failure-timeout DUR]
  librahost submit --hosts A,B,C [-n N] [--prefix] [--failure-timeout DUR] [--detach] app.wasm [--] [guest args]
  librahost status --hosts A,B,C
  librahost cancel JOB --hosts A,B,C
  librahost logs JOB --hosts A,B,C [-f]
  librahost attach JOB --hosts A,B,C [--from start|now]
  librahost migrate --job ID --rank R --to HOST --hosts A,B,C
  librahost drain HOST --hosts A,B,C | librahost undrain HOST --hosts A,B,C

Flags may stand before or after a command's other arguments; everything
after -- is the guest's. Run 'librahost <command> -h' for a command's flags.
`

// errUsage is a command-line mistake; its message has been printed.
var errUsage = errors.New("usage")

// exitError carries an exit code chosen by a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type command struct {
	name string
	run  func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"build", cmdBuild},
	{"run", cmdRun},
	{"checkpoint", cmdCheckpoint},
	{"restore", cmdRestore},
	{"ckpt", cmdCkpt},
	{"cluster", cmdCluster},
	{"host", cmdHost},
	{"submit", cmdSubmit},
	{"status", cmdStatus},
	{"cancel", cmdCancel},
	{"logs", cmdLogs},
	{"attach", cmdAttach},
	{"migrate", cmdMigrate},
	{"drain", cmdDrain},
	{"undrain", cmdUndrain},
}

// run is the whole CLI: it returns the process's exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
			return 2
		default:
			// "librahost build: build: ..." says its command once.
			msg := strings.TrimPrefix(oneLine(err.Error()), c.name+": ")
			fmt.Fprintf(stderr, "librahost %s: %s\n", c.name, msg)
			return 1
		}
	}
	fmt.Fprintf(stderr, "librahost: unknown command %q (run 'librahost help')\n", args[0])
	return 2
}

// newFlags returns a FlagSet that prints its errors as one line.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("librahost "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses a command's flags wherever they stand among its positional
// arguments, so that "build ./pkg -o app.wasm" and "build -o app.wasm
// ./pkg" mean one thing; after "--" everything is positional (a guest's
// arguments). fs.Args() then returns the positional arguments, in order,
// without the "--". A mistake is printed as one line.
func parse(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage // NewFlagSet sets a default Usage
	fs.SetOutput(io.Discard)            // the FlagSet would print its usage after each mistake
	fs.Usage = func() {}
	var pos []string
	var err error
	for {
		if err = fs.Parse(args); err != nil {
			break
		}
		rest := fs.Args()
		taken := args[:len(args)-len(rest)]
		if n := len(taken); n > 0 && taken[n-1] == "--" && (n == 1 || !takesValue(fs, taken[n-2])) {
			pos = append(pos, rest...) // after "--": all positional
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		hint := "run '" + fs.Name() + " -h' for its flags"
		if guestCommands[fs.Name()] && strings.Contains(err.Error(), "not defined") && len(pos) > 0 {
			hint = "a guest's own flags go after --, " + hint
		}
		fmt.Fprintf(out, "%s: %v (%s)\n", fs.Name(), err, hint)
		return errUsage
	}
	// Parsing "--" and the positional arguments leaves them as fs.Args().
	return fs.Parse(append([]string{"--"}, pos...))
}

// guestCommands are the FlagSets whose positional arguments end with a
// guest's arguments.
var guestCommands = map[string]bool{"librahost run": true, "librahost submit": true}

// takesValue reports whether arg is a flag of fs that takes the next
// argument as its value ("-o" of "-o --").
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if !strings.HasPrefix(arg, "-") || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// overheadFlag is --checkpoint-overhead: a share of the guest's time, as a
// percentage ("20%" or "20"), or "off" for no limit (0).
type overheadFlag float64

func (o *overheadFlag) String() string {
	if *o == 0 {
		return "off"
	}
	return strconv.FormatFloat(float64(*o)*100, 'g', -1, 64) + "%"
}

func (o *overheadFlag) Set(v string) error {
	if v == "off" {
		*o = 0
		return nil
	}
	p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || !(p > 0 && p <= 100) {
		return errors.New("want a percentage above 0 and at most 100 (e.g. 20%), or off")
	}
	*o = overheadFlag(p / 100)
	return nil
}

// overheadVar defines --checkpoint-overhead on fs.
func overheadVar(fs *flag.FlagSet) *overheadFlag {
	o := overheadFlag(job.DefaultCheckpointOverhead)
	fs.Var(&o, "checkpoint-overhead", "the most of the guest's `time` periodic checkpoints may hold it up (its pauses, its waits and faults for a capture): after a costly one the next waits; off for no limit")
	return &o
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// splitGuest splits a command's positional arguments, "app.wasm [--]
// args" with the "--" taken out by parse, into the module (or source) and
// the guest's arguments.
func splitGuest(rest []string) (module string, args []string) {
	if len(rest) == 0 {
		return "", nil
	}
	return rest[0], rest[1:]
}

// guestName is the guest's argv[0] for a module or source given as path.
func guestName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".wasm") }

// checkEnvs checks that every --env is K=V.
func checkEnvs(envs []string) error {
	for _, e := range envs {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("--env %q: want K=V", e)
		}
	}
	return nil
}
