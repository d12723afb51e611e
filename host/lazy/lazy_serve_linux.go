//go:build linux

package lazy

import (
	"errors"
	"fmt"
	"github.com/librahost/librahost/host/uffd"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/librahost/librahost/ckpt"
)

// Main serves a lazy restore's fill and exits if this process was started
// as its filler; otherwise it returns at once. Call it first thing in
// main (and in TestMain of tests that restore lazily).
func Main() {
	if os.Getenv(envFill) == "" {
		return
	}
	// The userfaultfd and the flag come over the socket (fd 3) when the
	// fill starts; the socket's end first: the filler was not needed.
	var oob [64]byte
	_, oobn, _, _, err := unix.Recvmsg(3, make([]byte, 1), oob[:], 0)
	if err != nil || oobn == 0 {
		os.Exit(0)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	var fds []int
	if err == nil && len(msgs) == 1 {
		fds, err = unix.ParseUnixRights(&msgs[0])
	}
	if err != nil || len(fds) != 2 {
		fmt.Fprintln(os.Stderr, "lazy filler: no userfaultfd given", err)
		os.Exit(1)
	}
	if err := serve(os.NewFile(uintptr(fds[0]), "userfaultfd"), os.NewFile(4, "plan"), os.NewFile(5, "reports"), os.NewFile(uintptr(fds[1]), "flag")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Chunk states in the filler.
const (
	chunkMissing = iota
	chunkBusy    // being filled
	chunkIn
	chunkBad
)

// Kinds of chunk in filler.src, besides an index in plan.srcs.
const (
	srcZero  = -1 // a zero chunk
	srcIndex = -2 // its place is found in the index (filler.places)
)

type filler struct {
	uffd  int
	p     *plan
	n     int     // chunks in the memory
	src   []int32 // by chunk: its index in p.srcs, or srcZero, srcIndex
	order []int32 // the non-zero chunks, in order
	state []atomic.Uint32
	left  atomic.Int64 // non-zero chunks not in yet
	gone  atomic.Bool  // the guest's memory is gone: nothing to fill

	hashes    []ckpt.Hash       // by chunk, with an index (the flag's memfd)
	places    *ckpt.PlaceReader // nil without an index, or if it did not open
	placesErr error             // why it did not
	segMu     sync.Mutex
	segs      map[uint32]*os.File // opened so far (nil: does not open)

	repMu sync.Mutex
	rep   *os.File
	flag  *uint32 // shared with the guest's process: see Fill.Failed
}

func serve(uf, ctl, rep, flag *os.File) error {
	p, err := readPlan(ctl)
	if err != nil {
		return fmt.Errorf("lazy filler: %v", err)
	}
	page := unix.Getpagesize()
	hashLen := int(p.nhash) * len(ckpt.Hash{})
	if fi, err := flag.Stat(); err != nil || fi.Size() < int64(page+hashLen) {
		return fmt.Errorf("lazy filler: the flag's memfd holds no %d chunk hashes (%v)", p.nhash, err)
	}
	fl, err := unix.Mmap(int(flag.Fd()), 0, page+hashLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("lazy filler: %v", err)
	}
	cs := uint64(p.chunkSize)
	f := &filler{uffd: int(uf.Fd()), p: p, n: int((p.size + cs - 1) / cs), segs: map[uint32]*os.File{}, rep: rep, flag: (*uint32)(unsafe.Pointer(&fl[0]))}
	f.src = make([]int32, f.n)
	for i := range f.src {
		f.src[i] = srcZero
	}
	for k, s := range p.srcs {
		if int(s.Index) >= f.n {
			return fmt.Errorf("lazy filler: chunk %d past the memory", s.Index)
		}
		f.src[s.Index] = int32(k)
	}
	if p.index != nil {
		if int(p.nhash) != f.n {
			return fmt.Errorf("lazy filler: %d chunk hashes for %d chunks", p.nhash, f.n)
		}
		f.hashes = unsafe.Slice((*ckpt.Hash)(unsafe.Pointer(&fl[page])), p.nhash)
		for i, h := range f.hashes {
			if !h.IsZero() {
				f.src[i] = srcIndex
			}
		}
		// An index that does not open fails each chunk when it is
		// filled, in the store's words (Fill's caller asks the store).
		f.places, f.placesErr = ckpt.OpenPlaces(*p.index)
	}
	for i, k := range f.src {
		if k != srcZero {
			f.order = append(f.order, int32(i))
		}
	}
	f.state = make([]atomic.Uint32, f.n)
	f.left.Store(int64(len(f.order)))
	f.report("ready")
	if len(f.order) == 0 {
		f.report("done")
	}
	go f.faults(uf)
	go f.background()
	// The guest's process closes the plan's pipe once the fill is done,
	// or to stop it; so does its death.
	_, _ = io.Copy(io.Discard, ctl)
	return nil
}

// faults fills the chunks the guest touches.
func (f *filler) faults(uf *os.File) {
	dec, buf := f.decoder()
	var msg uffd.Msg
	b := unsafe.Slice((*byte)(unsafe.Pointer(&msg)), unsafe.Sizeof(msg))
	for {
		if _, err := io.ReadFull(uf, b); err != nil {
			return
		}
		if msg.Event != uffd.EventPagefault || msg.Address < f.p.base || msg.Address >= f.p.base+f.p.size {
			continue
		}
		i := int((msg.Address - f.p.base) / uint64(f.p.chunkSize))
		switch f.state[i].Load() {
		case chunkMissing:
			if f.state[i].CompareAndSwap(chunkMissing, chunkBusy) {
				f.fill(i, dec, buf)
			} else {
				f.wake(i)
			}
		case chunkIn:
			f.wake(i) // filled since the fault was queued
		case chunkBad:
			f.wake(i)
		}
		// chunkBusy: the copy under way wakes it.
	}
}

// background fills the rest in order, on as many goroutines as the
// process has Ps (one under a test's hold, which counts the chunks).
func (f *filler) background() {
	var holdPath string
	if h := os.Getenv(envHold); h != "" {
		_, holdPath, _ = strings.Cut(h, ":")
	}
	workers := runtime.GOMAXPROCS(0)
	if f.p.hold > 0 {
		workers = 1
	}
	var next atomic.Int64
	var filled atomic.Uint32
	for range workers {
		go func() {
			dec, buf := f.decoder()
			for {
				k := next.Add(1) - 1
				if k >= int64(len(f.order)) || f.gone.Load() {
					return
				}
				if f.p.hold > 0 && filled.Load() == f.p.hold && holdPath != "" {
					fmt.Fprintf(os.Stderr, "librahost: lazy fill held after %d chunks until %s exists\n", f.p.hold, holdPath)
					for _, err := os.Stat(holdPath); err != nil; _, err = os.Stat(holdPath) {
						time.Sleep(10 * time.Millisecond)
					}
				}
				i := int(f.order[k])
				if f.state[i].CompareAndSwap(chunkMissing, chunkBusy) {
					f.fill(i, dec, buf)
					filled.Add(1)
				}
			}
		}()
	}
}

// fillBuf is a goroutine's buffers: a chunk's bytes and its stored value.
type fillBuf struct{ chunk, value []byte }

func (f *filler) decoder() (*ckpt.ValueDecoder, *fillBuf) {
	dec, err := ckpt.NewValueDecoder(int(f.p.chunkSize))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lazy filler:", err)
		os.Exit(1)
	}
	return dec, &fillBuf{chunk: make([]byte, f.p.chunkSize)}
}

// fill reads chunk i (claimed: chunkBusy) and copies it in.
func (f *filler) fill(i int, dec *ckpt.ValueDecoder, fb *fillBuf) {
	cs := uint64(f.p.chunkSize)
	off := uint64(i) * cs
	n := min(cs, f.p.size-off)
	k := f.src[i]
	if k == srcZero {
		z := uffd.ZeropageArg{Range: uffd.Range{Start: f.p.base + off, Len: n}}
		err := uffd.Ioctl(f.uffd, uffd.IoctlZeropage, unsafe.Pointer(&z))
		f.done(i, err)
		return
	}
	dst := fb.chunk[:n]
	s, err := f.source(i)
	var v []byte
	if err == nil {
		v, err = f.value(&s, fb)
	}
	if err == nil {
		err = dec.Decode(v, dst, s.Hash)
	}
	if err != nil {
		// The guest's process is told in the shared flag first, which
		// its host calls check: the guest, let past the chunk (zeros),
		// then writes nothing out and ends at its next call into the
		// host. Waiting for that process to stop it first could wait for
		// ever: its goroutines may be held by a stop-the-world that
		// waits for the guest's fault.
		f.state[i].Store(chunkBad)
		atomic.StoreUint32(f.flag, 1)
		f.gone.Store(true) // the background reader stops
		f.report(fmt.Sprintf("bad %d %s", i, strings.ReplaceAll(err.Error(), "\n", " ")))
		z := uffd.ZeropageArg{Range: uffd.Range{Start: f.p.base + off, Len: n}}
		_ = uffd.Ioctl(f.uffd, uffd.IoctlZeropage, unsafe.Pointer(&z))
		f.wake(i)
		return
	}
	// EAGAIN: the mapping changed under the copy; copy the rest again.
	for at := uint64(0); ; {
		c := uffd.CopyArg{Dst: f.p.base + off + at, Src: uint64(uintptr(unsafe.Pointer(&dst[at]))), Len: n - at}
		err = uffd.Ioctl(f.uffd, uffd.IoctlCopy, unsafe.Pointer(&c))
		if !errors.Is(err, unix.EAGAIN) {
			break
		}
		if c.Copied > 0 {
			at += uint64(c.Copied)
		}
		if at >= n {
			err = nil
			break
		}
	}
	f.done(i, err)
	if f.left.Add(-1) == 0 {
		f.report("done")
	}
}

// done marks chunk i in after its copy or zero page: a part of it
// present already (EEXIST) still has its waiters woken.
func (f *filler) done(i int, err error) {
	f.state[i].Store(chunkIn)
	switch {
	case err == nil:
	case errors.Is(err, unix.EEXIST):
		f.wake(i)
	default: // ENOENT, ESRCH: the memory or its process is gone
		f.gone.Store(true)
	}
}

func (f *filler) wake(i int) {
	cs := uint64(f.p.chunkSize)
	off := uint64(i) * cs
	r := uffd.Range{Start: f.p.base + off, Len: min(cs, f.p.size-off)}
	_ = uffd.Ioctl(f.uffd, uffd.IoctlWake, unsafe.Pointer(&r))
}

// source is where non-zero chunk i is stored: as the plan says, or as
// the index does.
func (f *filler) source(i int) (ckpt.ChunkSource, error) {
	if k := f.src[i]; k >= 0 {
		return f.p.srcs[k], nil
	}
	if f.places == nil {
		return ckpt.ChunkSource{}, fmt.Errorf("index cannot be read: %v", f.placesErr)
	}
	return f.places.Find(uint32(i), f.hashes[i])
}

// segment returns segment seg's file, opened on its first use; nil if it
// does not open, which fails its chunks as a missing value does.
func (f *filler) segment(seg uint32) *os.File {
	f.segMu.Lock()
	defer f.segMu.Unlock()
	sf, ok := f.segs[seg]
	if !ok {
		path, named := f.p.segs[seg]
		if !named && f.p.index != nil {
			path, named = ckpt.SegmentFile(f.p.index.SegDir, seg), true
		}
		if named {
			sf, _ = os.Open(path)
		}
		f.segs[seg] = sf
	}
	return sf
}

// value reads chunk source s's stored value.
func (f *filler) value(s *ckpt.ChunkSource, fb *fillBuf) ([]byte, error) {
	if s.Seg == 0 {
		return s.Value, nil
	}
	sf := f.segment(s.Seg)
	if sf == nil {
		return nil, fmt.Errorf("segment %d cannot be opened", s.Seg)
	}
	if s.Size > 64<<20 {
		return nil, fmt.Errorf("chunk value of %d bytes: index entry is corrupt", s.Size)
	}
	if uint64(cap(fb.value)) < s.Size {
		fb.value = make([]byte, s.Size)
	}
	v := fb.value[:s.Size]
	if _, err := sf.ReadAt(v, int64(s.Off)); err != nil {
		return nil, fmt.Errorf("chunk value cannot be read: %v", err)
	}
	return v, nil
}

func (f *filler) report(line string) {
	f.repMu.Lock()
	defer f.repMu.Unlock()
	_, _ = f.rep.WriteString(line + "\n")
}
