package host

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/librahost/librahost/transport"
)

// Results of libra.send and libra.recv (WASI errno values).
const (
	errnoOK    = 0
	errnoBig   = 1  // E2BIG: the message does not fit; its length is reported
	errnoAgain = 6  // EAGAIN: nothing to receive yet, or the send window is full
	errnoFault = 21 // EFAULT: a pointer outside memory
	errnoInval = 28 // EINVAL: no such rank
	errnoNoSys = 52 // ENOSYS: no messaging in this run
)

// watchInbox counts arrivals in the worker's inbox (the SDK's waiting
// goroutines wait for the count to move) and wakes a guest sleeping in
// poll_oneoff, until done is closed.
func (w *Worker) watchInbox(done <-chan struct{}) {
	if w.cfg.Endpoint == nil {
		return
	}
	in := w.cfg.Endpoint.Inbox(uint32(w.cfg.Rank))
	for {
		select {
		case <-done:
			return
		case <-in:
			w.changes.Add(1)
			signal(w.interrupt)
			signal(w.inboxWake)
			w.event.Signal()
		}
	}
}

// exportMessages adds libra.send and libra.recv to the libra module.
//
//	send(dst, tag i32, ptr, len i32) -> errno
//	recv(src, tag i32, buf, cap i32, info i32) -> errno; info: src, tag, len i32
//
// Neither waits for a Go guest: EAGAIN (nothing to receive, or the send
// window is full) sends the SDK's goroutine to wait for libra.pending's
// change count. An asyncify guest waits here, and the wait is a capture
// point.
func (w *Worker) exportMessages(b wazero.HostModuleBuilder) {
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, st []uint64) {
		if w.kind == KindAsyncify && w.Enter(ctx, mod) {
			return
		}
		dst, tag, ptr, n := uint32(st[0]), int32(st[1]), uint32(st[2]), uint32(st[3])
		w.untilReady(ctx, mod, st, func() uint32 { return w.send(mod, dst, tag, ptr, n) })
	}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("send")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, st []uint64) {
		if w.kind == KindAsyncify && w.Enter(ctx, mod) {
			return
		}
		src, tag, buf, capacity, info := int32(st[0]), int32(st[1]), uint32(st[2]), uint32(st[3]), uint32(st[4])
		w.untilReady(ctx, mod, st, func() uint32 { return w.recv(mod, src, tag, buf, capacity, info) })
	}), []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}).Export("recv")
}

// untilReady puts op's result in st[0]. For an asyncify guest it repeats
// op while it says EAGAIN, waking when the inbox or a send window changes;
// a checkpoint that comes due meanwhile unwinds the guest, and the rewind
// calls the import, so op, again.
func (w *Worker) untilReady(ctx context.Context, mod api.Module, st []uint64, op func() uint32) {
	for {
		r := op()
		if r != errnoAgain || w.kind != KindAsyncify {
			st[0] = uint64(r)
			return
		}
		w.checkStop()
		select {
		case <-w.inboxWake:
		case <-w.interrupt:
			if w.Enter(ctx, mod) {
				return
			}
		}
	}
}

func (w *Worker) send(mod api.Module, dst uint32, tag int32, ptr, n uint32) uint32 {
	if w.lazyFailed() {
		w.checkStop() // the message may be made of a damaged chunk's zeros
	}
	ep := w.cfg.Endpoint
	if ep == nil {
		return errnoNoSys
	}
	if int(dst) >= w.cfg.Size {
		return errnoInval
	}
	data, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return errnoFault
	}
	ok, err := ep.TrySend(uint32(w.cfg.Rank), dst, tag, data)
	switch {
	case err != nil:
		return errnoInval
	case !ok: // the window is full: acks make room
		return errnoAgain
	}
	return errnoOK
}

// recv takes a matching message, or reports that none is there yet.
func (w *Worker) recv(mod api.Module, src, tag int32, buf, capacity, info uint32) uint32 {
	ep := w.cfg.Endpoint
	if ep == nil {
		return errnoNoSys
	}
	if src != transport.Any && (src < 0 || int(src) >= w.cfg.Size) {
		return errnoInval
	}
	mem := mod.Memory()
	m, ok := w.takeHeld(src, tag)
	if !ok {
		if m, ok = ep.TryRecv(uint32(w.cfg.Rank), src, tag); !ok {
			return errnoAgain
		}
	}
	var hdr [12]byte
	binary.LittleEndian.PutUint32(hdr[0:], m.Src)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(m.Tag))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(m.Data)))
	if !mem.Write(info, hdr[:]) {
		w.held = &m
		return errnoFault
	}
	if uint32(len(m.Data)) > capacity {
		w.held = &m // the SDK asks again at once with a larger buffer
		return errnoBig
	}
	if !mem.Write(buf, m.Data) {
		w.held = &m
		return errnoFault
	}
	return errnoOK
}

// takeHeld returns the message kept back by a recv whose buffer was too
// small, if it matches.
func (w *Worker) takeHeld(src, tag int32) (transport.Message, bool) {
	m := w.held
	if m == nil || (src != transport.Any && m.Src != uint32(src)) ||
		(tag == transport.Any && m.Tag < 0) || (tag != transport.Any && m.Tag != tag) {
		return transport.Message{}, false
	}
	w.held = nil
	return *m, true
}
