package job

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// The control socket lets `librahost checkpoint --state DIR` reach the
// process running DIR. It is a Linux abstract socket named after the state
// directory, so a long path is no problem and nothing is left behind.
func controlAddr(stateDir string) (*net.UnixAddr, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	return &net.UnixAddr{Net: "unix", Name: "@librahost/" + hex.EncodeToString(sum[:12])}, nil
}

// serveControl answers requests on the control socket of stateDir until
// stopped; request asks for a checkpoint.
func serveControl(stateDir string, request func() <-chan ckptResult) (stop func(), err error) {
	addr, err := controlAddr(stateDir)
	if err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("job: control socket: %w", err)
	}
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go serveConn(c, request)
		}
	}()
	return func() { l.Close() }, nil
}

func serveConn(c net.Conn, request func() <-chan ckptResult) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	switch strings.TrimSpace(line) {
	case "checkpoint":
		r := <-request()
		if r.err != nil {
			fmt.Fprintf(c, "error %s\n", oneLine(r.err.Error()))
			return
		}
		fmt.Fprintf(c, "ok %d %d %d\n", r.epoch, r.stats.BytesStored, r.stats.PauseDur.Microseconds())
	default:
		fmt.Fprintf(c, "error unknown request %q\n", strings.TrimSpace(line))
	}
}

// ckptResult is a checkpoint asked for on the control socket, once
// committed (or failed).
type ckptResult struct {
	epoch uint64
	stats ckpt.Stats
	err   error
}

// CheckpointResult is the answer to RequestCheckpoint.
type CheckpointResult struct {
	Epoch       uint64
	BytesStored int64
	Pause       time.Duration
}

// RequestCheckpoint asks the librahost process running stateDir for a
// checkpoint and waits until it is durable.
func RequestCheckpoint(stateDir string, timeout time.Duration) (CheckpointResult, error) {
	var r CheckpointResult
	addr, err := controlAddr(stateDir)
	if err != nil {
		return r, err
	}
	c, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		return r, fmt.Errorf("job: no librahost process is running state dir %s", stateDir)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("checkpoint\n")); err != nil {
		return r, fmt.Errorf("job: control socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return r, fmt.Errorf("job: no answer from the process running %s: %v", stateDir, err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return r, errors.New(msg)
	}
	var us int64
	if _, err := fmt.Sscanf(line, "ok %d %d %d", &r.Epoch, &r.BytesStored, &us); err != nil {
		return r, fmt.Errorf("job: bad answer %q from the process running %s", line, stateDir)
	}
	r.Pause = time.Duration(us) * time.Microsecond
	return r, nil
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
