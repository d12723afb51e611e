package jobrec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Log is the output of one job on this host: written while the job runs,
// read by any number of Readers.
type Log struct {
	dir          string
	max, segSize int64

	mu   sync.Mutex
	segs []segment // kept, oldest first; the last one written to
	f    *os.File  // the last segment, while written to
	done bool      // finished: no more appends
	wake chan struct{}
	werr error // the first failed write: every later one fails too
}

// segment is one file of a log.
type segment struct {
	n    int
	size int64
}

func segName(n int) string { return fmt.Sprintf("%08d.out", n) }

func (d *DB) outputDir(id string) string { return filepath.Join(d.cfg.Dir, "output", id) }

// Create starts the output log of a job that begins here, removing any
// left by an earlier job of the ID.
func (d *DB) Create(id string) (*Log, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return nil, fmt.Errorf("jobrec: bad job ID %q", id)
	}
	dir := d.outputDir(id)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jobrec: output of job %s: %v", id, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, segName(1)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jobrec: output of job %s: %v", id, err)
	}
	l := &Log{dir: dir, max: d.cfg.MaxOutput, segSize: max(d.cfg.MaxOutput/8, 1),
		segs: []segment{{n: 1}}, f: f, wake: make(chan struct{})}
	d.mu.Lock()
	if old := d.logs[id]; old != nil {
		old.Finish()
	}
	d.logs[id] = l
	d.mu.Unlock()
	return l, nil
}

// Output returns the output log of job id: the one written to while the
// job runs here, else the one its record keeps (finished).
func (d *DB) Output(id string) (*Log, error) {
	d.mu.Lock()
	l := d.logs[id]
	d.mu.Unlock()
	if l != nil {
		return l, nil
	}
	r, err := d.Get(id)
	if err != nil {
		return nil, err
	}
	if r.OutputGone {
		return nil, fmt.Errorf("%w: job %s", ErrOutputGone, id)
	}
	dir := d.outputDir(id)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: job %s: %v", ErrOutputGone, id, err)
	}
	l = &Log{dir: dir, done: true, wake: make(chan struct{})}
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".out"))
		info, ierr := e.Info()
		if err != nil || ierr != nil || !strings.HasSuffix(e.Name(), ".out") {
			continue
		}
		l.segs = append(l.segs, segment{n: n, size: info.Size()})
	}
	slices.SortFunc(l.segs, func(a, b segment) int { return a.n - b.n })
	return l, nil
}

// LastOutput is when job id's output here was last written to (its
// newest segment's modification time), zero if none is kept.
func (d *DB) LastOutput(id string) time.Time {
	ents, _ := os.ReadDir(d.outputDir(id))
	var t time.Time
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	return t
}

// Finish ends the output of job id here (the job has ended): its log
// takes no more appends, its readers read to its end, and the output of
// older ended jobs past Config.MaxTotal is removed.
func (d *DB) Finish(id string) error {
	d.mu.Lock()
	l := d.logs[id]
	delete(d.logs, id)
	d.mu.Unlock()
	if l == nil {
		return nil
	}
	err := l.Finish()
	if terr := d.trimOutput(); err == nil {
		err = terr
	}
	return err
}

// trimOutput removes the output of the oldest ended jobs until that of
// the others fits in Config.MaxTotal, and marks their records so.
func (d *DB) trimOutput() error {
	recs, err := d.List(0, func(r Record) bool { return !r.Ended.IsZero() && !r.OutputGone })
	if err != nil {
		return err
	}
	var total int64
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		total += dirSize(d.outputDir(r.ID))
		if total <= d.cfg.MaxTotal {
			continue
		}
		os.RemoveAll(d.outputDir(r.ID))
		r.OutputGone = true
		if err := d.Put(r); err != nil {
			return err
		}
	}
	return nil
}

func dirSize(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// Append adds bytes of a rank's stream (1 stdout, 2 stderr) that begin
// at off in it. Past the log's bound, its oldest segments are removed.
// After a failed write every append fails (the job runs on: the caller
// decides whether to say so).
func (l *Log) Append(rank int, stream byte, off uint64, p []byte) error {
	frame := encodeFrame(Chunk{Rank: rank, Stream: stream, Off: off, P: p})
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.done:
		return ErrFinished
	case l.werr != nil:
		return l.werr
	}
	cur := &l.segs[len(l.segs)-1]
	if cur.size > 0 && cur.size+int64(len(frame)) > l.segSize {
		f, err := os.OpenFile(filepath.Join(l.dir, segName(cur.n+1)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			l.werr = fmt.Errorf("jobrec: output: %v", err)
			return l.werr
		}
		l.f.Close()
		l.f = f
		l.segs = append(l.segs, segment{n: cur.n + 1})
		cur = &l.segs[len(l.segs)-1]
	}
	if _, err := l.f.Write(frame); err != nil {
		l.werr = fmt.Errorf("jobrec: output: %v", err)
		return l.werr
	}
	cur.size += int64(len(frame))
	kept := int64(0)
	for _, s := range l.segs {
		kept += s.size
	}
	for kept > l.max && len(l.segs) > 1 {
		os.Remove(filepath.Join(l.dir, segName(l.segs[0].n)))
		kept -= l.segs[0].size
		l.segs = l.segs[1:]
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

// Finish ends the log: no more appends; its readers read to its end.
func (l *Log) Finish() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	close(l.wake)
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	return err
}

// Kept is how many bytes (frames included) the log holds.
func (l *Log) Kept() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}
