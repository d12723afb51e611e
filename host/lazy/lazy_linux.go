//go:build linux

package lazy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/uffd"
)

// Fill is a lazy restore under way.
type Fill struct {
	uffd   int
	mem    []byte
	fl     *Filler
	done   chan struct{}
	err    error // set before done is closed
	mu     sync.Mutex
	closed bool
	lifted bool
	// flag is a page shared with the filler (a memfd), whose first word
	// it sets before it lets the guest past a chunk that did not read
	// back: Failed needs nothing of the filler's reports, which this
	// process's goroutines read.
	flag []byte

	started time.Time
	ready   time.Duration // from Start until the filler had its plan
}

// ChunkError is a chunk the filler could not read back from the store.
type ChunkError struct {
	Index int    // the chunk's index in the memory
	Msg   string // the filler's reason
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("lazy: chunk %d: %s", e.Index, e.Msg)
}

// envFill marks the filler process; envHold is a test's hold of the
// background reader: "N:PATH" stops it after N chunks until PATH exists.
const (
	envFill = "LIBRAHOST_LAZY_FILL"
	envHold = "LIBRAHOST_LAZY_HOLD"
)

// Supported reports whether this process can restore lazily (nil), or why
// not.
func Supported() error {
	fd, err := open()
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// open opens a userfaultfd that serves the kernel's faults too.
func open() (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if errno != 0 {
		if errno == unix.EPERM {
			return -1, fmt.Errorf("%w: userfaultfd needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1", ErrUnsupported)
		}
		return -1, fmt.Errorf("%w: userfaultfd: %v", ErrUnsupported, errno)
	}
	api := uffd.APIArg{API: uffd.API}
	if err := uffd.Ioctl(int(fd), uffd.IoctlAPI, unsafe.Pointer(&api)); err != nil {
		unix.Close(int(fd))
		return -1, fmt.Errorf("%w: UFFDIO_API: %v", ErrUnsupported, err)
	}
	return int(fd), nil
}

// Filler is a filler process started ahead of its fill (Spawn): the
// guest's first touches then need not wait for a process to start (the
// librahost binary takes 100 ms and more to on a loaded machine). It
// waits for Start to send it the userfaultfd (over a unix socket) and the
// plan, or exits once Close (or this process's end) closes the socket.
type Filler struct {
	cmd    *exec.Cmd
	sock   *os.File // ours: the userfaultfd and the flag go through it
	ctl    *os.File // the plan, then kept open: its end tells the filler to exit
	rep    *os.File
	stderr bytes.Buffer
	waited chan struct{}
	used   atomic.Bool
}

// Spawn starts a filler process for one Start.
func Spawn() (*Filler, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	socks, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: socketpair: %v", ErrUnsupported, err)
	}
	ours, theirs := os.NewFile(uintptr(socks[0]), "lazy-sock"), os.NewFile(uintptr(socks[1]), "lazy-sock")
	defer theirs.Close()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		ours.Close()
		return nil, err
	}
	defer ctlR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		ours.Close()
		ctlW.Close()
		return nil, err
	}
	defer repW.Close()
	// A test binary whose TestMain does not call Main runs no test with
	// these arguments (and the fill fails); Main ignores them.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envFill+"=1")
	cmd.ExtraFiles = []*os.File{theirs, ctlR, repW}
	fl := &Filler{cmd: cmd, sock: ours, ctl: ctlW, rep: repR, waited: make(chan struct{})}
	cmd.Stderr = &fl.stderr
	if os.Getenv(envHold) != "" { // a test's hold: it watches for the filler's line
		cmd.Stderr = io.MultiWriter(&fl.stderr, os.Stderr)
	}
	// No Pdeathsig: it follows the thread that forked, which the Go
	// runtime may end (a locked goroutine's, such as a copy-on-write
	// handler's, when it returns) long before the process. The filler
	// ends when the pipes and the socket from this process close, as
	// they do when it dies.
	if err := cmd.Start(); err != nil {
		ours.Close()
		ctlW.Close()
		repR.Close()
		return nil, fmt.Errorf("%w: starting the filler: %v", ErrUnsupported, err)
	}
	return fl, nil
}

// Close ends a filler that Start did not take.
func (fl *Filler) Close() {
	if fl.used.Swap(true) {
		return
	}
	fl.sock.Close()
	fl.ctl.Close()
	fl.rep.Close()
	_ = fl.cmd.Wait()
	close(fl.waited)
}

// Start drops cfg.Memory's pages, registers them for missing faults and
// hands them to the filler (cfg.Filler, or one it spawns). The guest may
// run as soon as it returns.
func Start(cfg Config) (*Fill, error) {
	started := time.Now()
	mem := cfg.Memory
	page := unix.Getpagesize()
	fl := cfg.Filler
	if len(mem) == 0 || len(mem)%page != 0 || uintptr(unsafe.Pointer(&mem[0]))%uintptr(page) != 0 || cfg.ChunkSize <= 0 || cfg.ChunkSize%page != 0 {
		if fl != nil {
			fl.Close()
		}
		return nil, fmt.Errorf("%w: memory of %d bytes in chunks of %d", ErrUnsupported, len(mem), cfg.ChunkSize)
	}
	if fl == nil || fl.used.Swap(true) {
		var err error
		if fl, err = Spawn(); err != nil {
			return nil, err
		}
		fl.used.Store(true)
	}
	fd, err := open()
	if err != nil {
		fl.used.Store(false)
		fl.Close()
		return nil, err
	}
	f := &Fill{uffd: fd, mem: mem, fl: fl, done: make(chan struct{}), started: started}
	fail := func(err error) (*Fill, error) {
		fl.used.Store(false)
		fl.Close()
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Madvise(mem, unix.MADV_DONTNEED); err != nil {
		return fail(fmt.Errorf("%w: madvise: %v", ErrUnsupported, err))
	}
	reg := uffd.RegisterArg{Start: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(len(mem)), Mode: uffd.RegisterModeMissing}
	if err := uffd.Ioctl(fd, uffd.IoctlRegister, unsafe.Pointer(&reg)); err != nil {
		return fail(fmt.Errorf("%w: UFFDIO_REGISTER: %v", ErrUnsupported, err))
	}
	p := &plan{base: reg.Start, size: reg.Len, chunkSize: uint32(cfg.ChunkSize), segs: map[uint32]string{}, srcs: cfg.Chunks}
	if cfg.Index != nil {
		if n := (len(mem) + cfg.ChunkSize - 1) / cfg.ChunkSize; len(cfg.Hashes) != n || len(cfg.Chunks) > 0 {
			f.lift()
			return fail(fmt.Errorf("lazy: %d chunk hashes (and %d places) for a memory of %d chunks", len(cfg.Hashes), len(cfg.Chunks), n))
		}
		p.nhash, p.index = uint32(len(cfg.Hashes)), cfg.Index
	}
	for _, s := range cfg.Chunks {
		if s.Seg != 0 {
			if _, ok := p.segs[s.Seg]; !ok {
				p.segs[s.Seg] = cfg.SegmentPath(s.Seg)
			}
		}
	}
	if h := os.Getenv(envHold); h != "" {
		n, _, _ := strings.Cut(h, ":")
		v, _ := strconv.ParseUint(n, 10, 32)
		p.hold = uint32(v)
	}
	flagFile, err := newFlag(f, cfg.Hashes[:p.nhash])
	if err != nil {
		f.lift()
		return fail(err)
	}
	defer flagFile.Close()
	rights := unix.UnixRights(fd, int(flagFile.Fd()))
	if err := unix.Sendmsg(int(fl.sock.Fd()), []byte{1}, rights, nil, 0); err != nil {
		f.lift()
		unix.Munmap(f.flag)
		return fail(fmt.Errorf("%w: handing the filler its userfaultfd: %v", ErrUnsupported, err))
	}
	// The plan is written before Start returns, not by a goroutine: once
	// the guest runs, a fault of its holds its P, and a stop-the-world
	// waiting for that P would stop such a goroutine before the filler
	// had what it needs to resolve the fault. From here on the filler
	// needs nothing of this process's goroutines.
	if err := p.write(fl.ctl); err != nil {
		f.lift()
		unix.Munmap(f.flag)
		return fail(fmt.Errorf("%w: telling the filler its plan: %v", ErrUnsupported, err))
	}
	go f.listen()
	return f, nil
}

// listen reads the filler's reports.
func (f *Fill) listen() {
	sc := bufio.NewScanner(f.fl.rep)
	var err error
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			f.mu.Lock()
			f.ready = time.Since(f.started)
			f.mu.Unlock()
			continue
		}
		if line == "done" {
			f.finish(nil)
			continue
		}
		if rest, ok := strings.CutPrefix(line, "bad "); ok {
			idx, msg, _ := strings.Cut(rest, " ")
			i, _ := strconv.Atoi(idx)
			f.finish(&ChunkError{Index: i, Msg: msg})
			continue
		}
	}
	f.fl.rep.Close()
	werr := f.fl.cmd.Wait()
	f.fl.sock.Close()
	close(f.fl.waited)
	f.mu.Lock()
	// The filler exits once the fill is done (the plan's pipe closed), or
	// once Close asked it to: anything else is a failure.
	expected := f.closed || f.lifted && f.err == nil && isClosed(f.done)
	f.mu.Unlock()
	if !expected {
		// The guest may wait on a chunk that now never comes: it is let
		// go, and must end, as for a chunk that did not read back.
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&f.flag[0])), 1)
		f.lift()
		err = fmt.Errorf("lazy: the filler ended before the memory was in (%v): %s", werr, strings.TrimSpace(f.fl.stderr.String()))
		f.finish(err)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// finish records the outcome once; a fill done lifts the registration (the
// zero chunks left are the kernel's zero pages) and lets the filler go.
func (f *Fill) finish(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
		return
	default:
	}
	f.err = err
	if err == nil {
		f.liftLocked()
		f.fl.ctl.Close()
	}
	close(f.done)
}

// newFlag maps f's shared flag page and returns its file for the filler,
// which holds hashes from its second page on (lazy_wire.go).
func newFlag(f *Fill, hashes []ckpt.Hash) (*os.File, error) {
	fd, err := unix.MemfdCreate("librahost-lazy", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: memfd_create: %v", ErrUnsupported, err)
	}
	file := os.NewFile(uintptr(fd), "lazy-flag")
	page := unix.Getpagesize()
	hb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(hashes))), len(hashes)*len(ckpt.Hash{}))
	if err := unix.Ftruncate(fd, int64(page+len(hb))); err != nil {
		file.Close()
		return nil, err
	}
	for at := 0; at < len(hb); {
		n, err := unix.Pwrite(fd, hb[at:], int64(page+at))
		if err != nil {
			file.Close()
			return nil, err
		}
		at += n
	}
	f.flag, err = unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

// Failed reports whether the filler found a chunk that does not read
// back. It may be called at any time, from any goroutine, and needs no
// other goroutine to run: the guest's next call into the host checks it
// (the guest may have gone past that chunk, reading zeros there).
func (f *Fill) Failed() bool {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&f.flag[0]))) != 0
}

// FillerReady is how long after Start began the filler had its plan and
// served faults (the guest's touches wait until then): with a filler
// spawned by Start, its start up included; 0 before.
func (f *Fill) FillerReady() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// FillerPeak is the filler process's peak resident memory, in bytes,
// once it has exited (after Close); 0 before.
func (f *Fill) FillerPeak() uint64 {
	select {
	case <-f.fl.waited:
	default:
		return 0
	}
	if ru, ok := f.fl.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return uint64(ru.Maxrss) << 10
	}
	return 0
}

// Done is closed once every chunk is in, or the fill failed (Err).
func (f *Fill) Done() <-chan struct{} { return f.done }

// Err is why the fill failed (a *ChunkError for a chunk that did not read
// back), or nil once every chunk is in; call it after Done.
func (f *Fill) Err() error { return f.err }

// Close ends the fill: the registration is lifted, so that a guest
// waiting on a chunk not filled goes on with zeros there (stop the guest
// first), and the filler exits.
func (f *Fill) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.liftLocked()
	f.fl.ctl.Close()
	f.mu.Unlock()
	f.finish(errors.New("lazy: closed before the memory was in"))
	<-f.fl.waited
	unix.Close(f.uffd)
	// f.flag stays mapped: Failed may still be called.
}

func (f *Fill) lift() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.liftLocked()
}

// liftLocked unregisters the memory, which wakes the faults waiting there.
func (f *Fill) liftLocked() {
	if f.lifted {
		return
	}
	f.lifted = true
	r := uffd.Range{Start: uint64(uintptr(unsafe.Pointer(&f.mem[0]))), Len: uint64(len(f.mem))}
	_ = uffd.Ioctl(f.uffd, uffd.IoctlUnregister, unsafe.Pointer(&r))
}
