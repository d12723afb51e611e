package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/librahost/librahost/ckpt"
)

// Stats says what one replica cost.
type Stats struct {
	Chunks int   // distinct chunks the checkpoint uses
	Sent   int   // chunk values sent (the replica lacked them)
	Bytes  int64 // bytes of those values
}

// Options tunes a Send. The zero value asks the replica host what it
// lacks before sending anything.
type Options struct {
	// Base is an epoch of the same key that the replica host is known to
	// hold (it took a replica of it): the values of the chunks the
	// checkpoint does not share with Base are sent at once, without
	// waiting for the replica host to say what it lacks, which saves a
	// round trip on an incremental checkpoint. Whatever else it lacks is
	// sent once it says so. 0: none known.
	Base uint64
	// Progress, if set, is called as values are sent, with the bytes of
	// values sent so far and the bytes to send (which grows once, when
	// the replica host says it lacks more than Base suggested). It is
	// called from Send's goroutine; a progress bar adds done's growth.
	Progress func(done, total int64)
}

// Send offers k's checkpoint of epoch in store to the replica host at the
// other end of rw and sends the values it lacks. It returns once the
// replica is durable there, or with the reason it was refused. A
// goroutine of Send reads rw until the replica host's answer: close rw
// when Send returns.
func Send(rw io.ReadWriter, store *ckpt.Store, k ckpt.Key, epoch uint64, opt Options) (Stats, error) {
	r, err := store.ReplicaOf(k, epoch)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Chunks: len(r.Chunks)}
	frames := make(chan frame, 2)
	go readFrames(rw, frames)
	// The OFFER goes out while the values to push are chosen.
	offered := make(chan error, 1)
	go func() { offered <- writeFrame(rw, tOffer, encodeOffer(offer{k, epoch, r.Manifest})) }()
	push := pushed(store, k, opt.Base, r.Chunks)
	s := &sender{w: rw, store: store, r: r, st: &st, opt: opt, frames: frames, offered: offered}
	if err := s.values(push); err != nil {
		return st, s.refusal(err)
	}
	for s.need == nil && s.answer == nil {
		s.take(<-frames)
	}
	if s.answer == nil {
		ix, err := decodeIndexes(s.need.body, len(r.Chunks))
		if err != nil {
			return st, err
		}
		if err := s.values(without(ix, push)); err != nil {
			return st, s.refusal(err)
		}
	}
	err = s.offerSent()
	if err == nil {
		err = writeFrame(rw, tEnd, nil)
	}
	if err != nil && s.answer == nil {
		return st, s.refusal(err)
	}
	for s.answer == nil {
		s.take(<-frames)
	}
	if f := s.answer; f.err != nil {
		return st, f.err
	}
	return st, result(s.answer.body)
}

// refusal returns the replica host's refusal, if it already came, instead
// of err (a write that failed because it stopped reading).
func (s *sender) refusal(err error) error {
	select {
	case f := <-s.frames:
		s.take(f)
	default:
	}
	if f := s.answer; f != nil && f.err == nil {
		return result(f.body)
	}
	return err
}

// pushed lists the indexes of the chunks of hs that the epoch base of k
// does not use: those a replica host that holds base lacks.
func pushed(store *ckpt.Store, k ckpt.Key, base uint64, hs []ckpt.Hash) []uint32 {
	if base == 0 {
		return nil
	}
	b, err := store.ReplicaOf(k, base)
	if err != nil {
		return nil // not here any more: ask
	}
	in := make(map[ckpt.Hash]struct{}, len(b.Chunks))
	for _, h := range b.Chunks {
		in[h] = struct{}{}
	}
	var out []uint32
	for i, h := range hs {
		if _, ok := in[h]; !ok {
			out = append(out, uint32(i))
		}
	}
	return out
}

// without returns the indexes of ix (increasing) that are not in sent
// (increasing).
func without(ix, sent []uint32) []uint32 {
	out := ix[:0]
	j := 0
	for _, i := range ix {
		for j < len(sent) && sent[j] < i {
			j++
		}
		if j < len(sent) && sent[j] == i {
			continue
		}
		out = append(out, i)
	}
	return out
}

func result(body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty result", ErrProtocol)
	}
	if body[0] == resultOK {
		return nil
	}
	return &refusal{why: string(body[1:]), again: body[0] == resultAgain}
}

// frame is one frame read from the peer, or why none could be.
type frame struct {
	typ  byte
	body []byte
	err  error
}

// readFrames reads the replica host's frames (NEED, RESULT) into frames
// until its RESULT or an error, so that its NEED is read while values are
// pushed.
func readFrames(r io.Reader, frames chan<- frame) {
	for {
		var buf []byte
		typ, body, err := readFrame(r, &buf)
		frames <- frame{typ, body, err}
		if err != nil || typ == tResult {
			return
		}
	}
}

// sender sends values.
type sender struct {
	w      io.Writer
	store  *ckpt.Store
	r      *ckpt.Replica
	st     *Stats
	opt    Options
	done   int64
	total  int64
	frames chan frame
	need   *frame // the replica host's NEED, once read
	answer *frame // its RESULT, or why none came

	offered chan error // the OFFER's write; nothing else is written before it
	offerOK bool
}

// offerSent waits for the OFFER to be written.
func (s *sender) offerSent() error {
	if s.offerOK {
		return nil
	}
	if err := <-s.offered; err != nil {
		s.offered <- err // for the next call
		return err
	}
	s.offerOK = true
	return nil
}

// take files a frame from the replica host.
func (s *sender) take(f frame) {
	switch {
	case f.err != nil || f.typ == tResult:
		s.answer = &f
	case f.typ == tNeed && s.need == nil:
		s.need = &f
	default:
		s.answer = &frame{err: fmt.Errorf("%w: frame type %d instead of NEED or RESULT", ErrProtocol, f.typ)}
	}
}

// sendBatch is the size of the writes of VALUE frames.
const sendBatch = 256 << 10

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, sendBatch+64<<10); return &b }}

// batch is VALUE frames ready to write.
type batch struct {
	b      *[]byte
	values int
	bytes  int64
}

var errStopped = errors.New("stopped")

// values sends the values of the chunks ix. The values are read from the
// store by a goroutine of their own, a few batches ahead of the writes.
// It stops early, without error, if the replica host answers meanwhile
// (a refusal): s.answer holds the answer.
func (s *sender) values(ix []uint32) error {
	if len(ix) == 0 {
		return nil
	}
	hs := make([]ckpt.Hash, len(ix))
	for k, i := range ix {
		hs[k] = s.r.Chunks[i]
	}
	if s.opt.Progress != nil {
		sizes, err := s.store.ValueSizes(hs)
		if err != nil {
			return err
		}
		for _, n := range sizes {
			s.total += n
		}
	}
	batches := make(chan batch, 4)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		cur := batch{b: batchPool.Get().(*[]byte)}
		k := 0
		err := s.store.ReadValues(hs, func(_ ckpt.Hash, v []byte) error {
			if cur.values > 0 && len(*cur.b)+9+len(v) > sendBatch {
				select {
				case batches <- cur:
				case <-stop:
					return errStopped
				}
				cur = batch{b: batchPool.Get().(*[]byte)}
			}
			*cur.b = appendValueFrame((*cur.b)[:len(*cur.b)], ix[k], v)
			cur.values++
			cur.bytes += int64(len(v))
			k++
			return nil
		})
		if err == nil {
			select {
			case batches <- cur:
			case <-stop:
			}
		}
		readErr <- err
	}()
	finish := func(err error) error {
		close(stop)
		for b := range batches {
			putBatch(b)
		}
		if rerr := <-readErr; err == nil && rerr != errStopped {
			err = rerr
		}
		return err
	}
	for b := range batches {
		if err := s.offerSent(); err != nil {
			putBatch(b)
			return finish(err)
		}
		if _, err := s.w.Write(*b.b); err != nil {
			putBatch(b)
			return finish(err)
		}
		s.st.Sent += b.values
		s.st.Bytes += b.bytes
		s.done += b.bytes
		putBatch(b)
		if s.opt.Progress != nil {
			s.opt.Progress(s.done, s.total)
		}
		select {
		case f := <-s.frames:
			s.take(f)
		default:
		}
		if s.answer != nil {
			return finish(nil)
		}
	}
	return finish(nil)
}

func putBatch(b batch) {
	*b.b = (*b.b)[:0]
	batchPool.Put(b.b)
}

// Serve takes one replica from the source at the other end of rw into
// store, and answers whether it is durable. A refusal is said to the
// source and returned; nothing of a refused replica is kept. A refusal
// while the source may still be sending values is said at once, and what
// the source still sends is read until its END, so that it is not left
// blocked on a stream no one reads.
func Serve(rw io.ReadWriter, store *ckpt.Store) error {
	return ServeThen(rw, store, nil)
}

// ServeThen is Serve that calls durable, if not nil, once the replica is
// durable and before the source is told: what durable does counts in the
// source's wait (a migration's target writes the round it got into the
// rank's worker there before the source may stop the rank).
func ServeThen(rw io.ReadWriter, store *ckpt.Store, durable func()) error {
	v := &server{rw: rw, store: store}
	err := v.serve()
	if err == nil && durable != nil {
		durable()
	}
	if werr := v.answer(err); err == nil {
		err = werr
	} else if werr == nil && v.sending {
		v.drain()
	}
	return err
}

type server struct {
	rw    io.ReadWriter
	store *ckpt.Store
	// sending: the source may still send frames (an OFFER was read, its
	// END was not, and the frames read so far were sound); skip is what
	// is left of the frame being read.
	sending bool
	skip    int64
}

// answer sends the RESULT: ok, or the one line of err.
func (v *server) answer(err error) error {
	res := []byte{resultOK}
	switch {
	case errors.Is(err, ckpt.ErrChunkGone):
		res = append([]byte{resultAgain}, err.Error()...)
	case err != nil:
		res = append([]byte{resultRefused}, err.Error()...)
	}
	return writeFrame(v.rw, tResult, res)
}

// drain reads what the source sends until its END.
func (v *server) drain() {
	if _, err := io.CopyN(io.Discard, v.rw, v.skip); err != nil {
		return
	}
	var buf []byte
	for {
		typ, _, err := readFrame(v.rw, &buf)
		if err != nil || typ == tEnd {
			return
		}
	}
}

func (v *server) serve() error {
	var buf []byte
	typ, body, err := readFrame(v.rw, &buf)
	if err != nil {
		return err
	}
	if typ != tOffer {
		return fmt.Errorf("%w: frame type %d instead of OFFER", ErrProtocol, typ)
	}
	v.sending = true
	o, err := decodeOffer(body)
	if err != nil {
		return err
	}
	rx, err := v.store.BeginReplica(o.manifest)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			rx.Abort()
		}
	}()
	chunks := rx.Chunks()
	if k := rx.Key(); k != o.key || rx.Epoch() != o.epoch {
		return fmt.Errorf("%w: offer of job %q worker %d epoch %d carries the manifest of job %q worker %d epoch %d", ErrProtocol, o.key.Job, o.key.Worker, o.epoch, k.Job, k.Worker, rx.Epoch())
	}
	// The NEED goes out while the values pushed are read; nothing else is
	// written to rw until it is sent.
	needErr := make(chan error, 1)
	go func() {
		missing, err := rx.Missing()
		if err == nil {
			err = writeFrame(v.rw, tNeed, encodeIndexes(indexes(chunks, missing)))
		}
		needErr <- err
	}()
	err = v.values(rx, chunks)
	if nerr := <-needErr; err == nil {
		err = nerr
	}
	if err != nil {
		return err
	}
	committed = true
	return rx.Commit()
}

// values reads VALUE frames into rx until the END.
func (v *server) values(rx *ckpt.ReplicaIn, chunks []ckpt.Hash) error {
	var hdr [9]byte
	lost := func(err error) error { // the frames can no longer be told apart
		v.sending = false
		return err
	}
	for {
		if _, err := io.ReadFull(v.rw, hdr[:5]); err != nil {
			return lost(err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > maxFrame {
			return lost(fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n))
		}
		if hdr[4] == tEnd && n == 1 {
			v.sending = false
			return nil
		}
		if hdr[4] != tValue || n < 5 {
			return lost(fmt.Errorf("%w: frame type %d instead of VALUE or END", ErrProtocol, hdr[4]))
		}
		if _, err := io.ReadFull(v.rw, hdr[5:]); err != nil {
			return lost(err)
		}
		i := binary.BigEndian.Uint32(hdr[5:])
		v.skip = int64(n - 5)
		if int(i) >= len(chunks) {
			return fmt.Errorf("%w: value of chunk %d of %d", ErrProtocol, i, len(chunks))
		}
		val, err := rx.Value(int(n - 5))
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(v.rw, val); err != nil {
			return lost(err)
		}
		v.skip = 0
		if err := rx.Add(chunks[i], val); err != nil {
			return err
		}
	}
}

// indexes returns the places in chunks of missing (a subsequence of it).
func indexes(chunks, missing []ckpt.Hash) []uint32 {
	out := make([]uint32, 0, len(missing))
	j := 0
	for i, h := range chunks {
		if j < len(missing) && missing[j] == h {
			out = append(out, uint32(i))
			j++
		}
	}
	return out
}
