package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	driver "github.com/librahost/librahost/host/job"
)

// A job over several hosts mounts directories that exist on every host
// (`submit --dir HOST:GUEST[:ro]`): each host resolves HOST on its own
// file system (a relative path from its working directory). A read-only
// mount is the job's input: each host hashes its tree (names, kinds,
// sizes, contents and link targets; not times or permissions) and says
// the hash in READY, and the submitter refuses the job in one line if two
// hosts differ, since a rank restarted on another host would read other
// input.

// mountMsg is a mount of a job, as the submitter gave it.
type mountMsg struct {
	Host     string `json:"host"`
	Guest    string `json:"guest"`
	ReadOnly bool   `json:"ro,omitempty"`
}

// String renders the mount as --dir takes it.
func (m mountMsg) String() string {
	s := m.Host + ":" + m.Guest
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

func mountsToMsg(ms []driver.Mount) []mountMsg {
	var out []mountMsg
	for _, m := range ms {
		out = append(out, mountMsg{Host: m.HostPath, Guest: m.GuestPath, ReadOnly: m.ReadOnly})
	}
	return out
}

func mountsFromMsg(ms []mountMsg) []driver.Mount {
	var out []driver.Mount
	for _, m := range ms {
		out = append(out, driver.Mount{HostPath: m.Host, GuestPath: m.Guest, ReadOnly: m.ReadOnly})
	}
	return out
}

// resolveMounts finds a job's mounts here, and the hash of each one's
// tree ("" for a read-write one). Their host paths stay as the submitter
// gave them: they are part of each rank's checkpoint's run binding,
// which must be the same on every host that may restore the rank.
func (d *Daemon) resolveMounts(ms []mountMsg) ([]driver.Mount, []string, error) {
	var out []driver.Mount
	var hashes []string
	for _, m := range ms {
		abs, err := filepath.Abs(m.Host)
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(abs); err == nil && !fi.IsDir() {
				err = fmt.Errorf("not a directory")
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--dir %s: %s is not a directory on host %s: the directory must exist on every host of the job", m, abs, d.cfg.Name)
		}
		h := ""
		if m.ReadOnly {
			if h, err = hashTree(abs); err != nil {
				return nil, nil, fmt.Errorf("--dir %s: reading it on host %s: %v", m, d.cfg.Name, err)
			}
		}
		out = append(out, driver.Mount{HostPath: m.Host, GuestPath: m.Guest, ReadOnly: m.ReadOnly})
		hashes = append(hashes, h)
	}
	return out, hashes, nil
}

// hashTree returns the SHA-256 of a directory tree: each entry's path
// under dir, kind, and a file's size and contents or a link's target, in
// lexical order.
func hashTree(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		io.WriteString(h, strconv.Quote(filepath.ToSlash(rel)))
		switch t := e.Type(); {
		case t.IsDir():
			io.WriteString(h, " dir\n")
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			io.WriteString(h, " link "+strconv.Quote(target)+"\n")
		case t.IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fh := sha256.New()
			n, err := io.Copy(fh, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " file %d %x\n", n, fh.Sum(nil))
		default:
			fmt.Fprintf(h, " %v\n", t)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkInputs refuses a job whose read-only mounts differ between hosts:
// inputs[i] are host ids[i]'s hashes of ms, in order.
func checkInputs(ms []mountMsg, ids []string, inputs [][]string) error {
	for k, m := range ms {
		if !m.ReadOnly {
			continue
		}
		for i := range ids {
			if len(inputs[i]) != len(ms) {
				return fmt.Errorf("%w: host %s hashed %d mounts of %d", ErrProtocol, ids[i], len(inputs[i]), len(ms))
			}
			if a, b := inputs[0][k], inputs[i][k]; a != b {
				return fmt.Errorf("--dir %s: the read-only input differs between host %s and host %s (sha256 %.12s… and %.12s…): make its contents the same on every host of the job",
					m, ids[0], ids[i], a, b)
			}
		}
	}
	return nil
}
