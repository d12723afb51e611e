package ckpt

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// SetFailpoints arms failpoints from a spec of the form
// "name=action[;name=action...]", where action is "error" (the write
// fails), "error(PATH)" (the write fails while the file PATH exists),
// "sleep(DUR)" (the write waits DUR first, inside its
// transaction) or "wait(PATH)" (the write waits until the file PATH
// exists, saying so first on stderr, "librahost: failpoint NAME: waiting
// for PATH", if it does not: a test holds it open until an event of its choice, or kills
// the process there).
// End-to-end fault-injection tests set it through the
// LIBRAHOST_FAILPOINTS environment variable, in the manner of gofail.
// An empty spec disarms them all.
func SetFailpoints(spec string) error {
	if strings.TrimSpace(spec) == "" {
		setFailpoint(nil)
		return nil
	}
	actions := map[string]func() error{}
	for _, item := range strings.Split(spec, ";") {
		name, action, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			return fmt.Errorf("ckpt: failpoint %q: want name=action", item)
		}
		switch {
		case action == "error":
			actions[name] = func() error { return fmt.Errorf("ckpt: failpoint %s", name) }
		case strings.HasPrefix(action, "error(") && strings.HasSuffix(action, ")"):
			path := action[len("error(") : len(action)-1]
			actions[name] = func() error {
				if _, err := os.Stat(path); err != nil {
					return nil
				}
				return fmt.Errorf("ckpt: failpoint %s", name)
			}
		case strings.HasPrefix(action, "sleep(") && strings.HasSuffix(action, ")"):
			d, err := time.ParseDuration(action[len("sleep(") : len(action)-1])
			if err != nil {
				return fmt.Errorf("ckpt: failpoint %q: %v", item, err)
			}
			actions[name] = func() error { time.Sleep(d); return nil }
		case strings.HasPrefix(action, "wait(") && strings.HasSuffix(action, ")"):
			path := action[len("wait(") : len(action)-1]
			actions[name] = func() error {
				if _, err := os.Stat(path); err != nil {
					fmt.Fprintf(os.Stderr, "librahost: failpoint %s: waiting for %s\n", name, path)
				}
				for _, err := os.Stat(path); err != nil; _, err = os.Stat(path) {
					time.Sleep(10 * time.Millisecond)
				}
				return nil
			}
		default:
			return errors.New("ckpt: failpoint " + item + ": action must be error, error(PATH), sleep(DUR) or wait(PATH)")
		}
	}
	setFailpoint(func(name string) error {
		if a, ok := actions[name]; ok {
			return a()
		}
		return nil
	})
	return nil
}
