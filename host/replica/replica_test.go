package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

func openStore(t testing.TB) *ckpt.Store {
	t.Helper()
	return openStoreWith(t, ckpt.Config{NoSync: true})
}

func openStoreWith(t testing.TB, cfg ckpt.Config) *ckpt.Store {
	t.Helper()
	cfg.Path = filepath.Join(t.TempDir(), "ckpt.db")
	s, err := ckpt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var key = ckpt.Key{Job: "job", Worker: 2}

func capture(t testing.TB, s *ckpt.Store, epoch uint64, mem []byte) {
	t.Helper()
	captureKey(t, s, key, epoch, mem)
}

// captureKey is capture under key k.
func captureKey(t testing.TB, s *ckpt.Store, k ckpt.Key, epoch uint64, mem []byte) {
	t.Helper()
	meta := ckpt.Meta{Key: k, Epoch: epoch, Created: time.Unix(1, 0), Host: []byte("host state"),
		Binding: ckpt.Binding{ModuleDigest: sha256.Sum256([]byte("m")), Wazero: "v1.12.0", Go: "go1.26.8"}}
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// memory makes n bytes that compress a little, as guest memory does.
func memory(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		if i%64 < 24 {
			v &= 0xff
		}
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// pipeReplica runs Send and Serve at the two ends of a pipe.
func pipeReplica(t *testing.T, src, dst *ckpt.Store, epoch uint64) (Stats, error, error) {
	t.Helper()
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- Serve(b, dst); b.Close() }()
	st, err := Send(a, src, key, epoch, Options{})
	a.Close()
	return st, err, <-served
}

func readBack(t *testing.T, s *ckpt.Store, epoch uint64, want []byte) {
	t.Helper()
	m, err := s.Manifest(key, epoch)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if err := s.ReadMemory(m, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || string(m.Host) != "host state" {
		t.Fatalf("epoch %d reads back differently from the replica", epoch)
	}
}

// TestReplicaFullAndIncremental: the first replica sends every chunk, the
// next only the chunks that changed; both read back exactly.
func TestReplicaFullAndIncremental(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	mem := memory(4<<20, 1) // 64 chunks of 64 KiB
	capture(t, src, 1, mem)
	st, err, serr := pipeReplica(t, src, dst, 1)
	if err != nil || serr != nil || st.Chunks != 64 || st.Sent != 64 {
		t.Fatalf("full: %+v %v %v", st, err, serr)
	}
	readBack(t, dst, 1, mem)
	mem1 := bytes.Clone(mem)
	copy(mem[100<<10:], memory(1024, 2))
	capture(t, src, 2, mem)
	st, err, serr = pipeReplica(t, src, dst, 2)
	if err != nil || serr != nil || st.Sent != 1 {
		t.Fatalf("incremental with one chunk changed: %+v %v %v", st, err, serr)
	}
	readBack(t, dst, 2, mem)
	readBack(t, dst, 1, mem1)
}

// TestReplicaGarbage: a replica host given garbage says so in one line
// and keeps nothing; a source told garbage fails the same way.
func TestReplicaGarbage(t *testing.T) {
	dst := openStore(t)
	for _, in := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0, 0, 0, 0},
		{0, 0, 0, 2, tOffer, 9},
		{0xff, 0xff, 0xff, 0xff, 1},
		{0, 0, 0, 1, tEnd},
	} {
		a, b := net.Pipe()
		served := make(chan error, 1)
		go func() { served <- Serve(b, dst); b.Close() }()
		go io.Copy(io.Discard, a)
		go func() { a.Write(in); a.Close() }()
		err := <-served
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
	}
	if keys, _ := dst.Keys(); len(keys) != 0 {
		t.Fatalf("garbage left %v", keys)
	}
	// An offer of another version of the protocol (the first byte).
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- Serve(b, dst); b.Close() }()
	go io.Copy(io.Discard, a)
	off := encodeOffer(offer{key, 1, []byte("manifest")})
	off[0] = 1
	go func() { writeFrame(a, tOffer, off); a.Close() }()
	if err := <-served; !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "version 1, this host speaks version 2") {
		t.Fatalf("an offer of version 1: %v", err)
	}
	src := openStore(t)
	capture(t, src, 1, memory(1<<20, 3))
	a, b = net.Pipe()
	go func() {
		var buf []byte
		readFrame(b, &buf)
		writeFrame(b, tNeed, []byte{0, 0, 0, 99}) // chunk 99 of 16
		io.Copy(io.Discard, b)
	}()
	if _, err := Send(a, src, key, 1, Options{}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a need naming no chunk: %v", err)
	}
	a.Close()
}

// TestReplicaQUIC replicates over a QUIC stream between two hosts of a
// cluster, under its mutual TLS.
func TestReplicaQUIC(t *testing.T) {
	cli, srv := quicPair(t)
	src, dst := openStore(t), openStore(t)
	mem := memory(8<<20, 4)
	capture(t, src, 1, mem)
	st, err := sendOnce(cli, srv, src, dst, 1, Options{})
	if err != nil || st.Sent != 128 {
		t.Fatalf("%+v %v", st, err)
	}
	readBack(t, dst, 1, mem)
}

func quicPair(tb testing.TB) (cli, srv quicConn) {
	tb.Helper()
	dir := tb.TempDir()
	if err := transport.InitCluster(dir, []string{"a=127.0.0.1", "b=127.0.0.1"}); err != nil {
		tb.Fatal(err)
	}
	tls := func(h string) *tls.Config {
		c, err := transport.LoadHostTLS(dir, h)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	// A host's listener has the receive windows of links
	// (host/node.Listen).
	qc := &quic.Config{}
	transport.TuneAcceptConfig(qc)
	ln, err := quic.ListenAddr("127.0.0.1:0", tls("a"), qc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err = quic.DialAddr(ctx, ln.Addr().String(), tls("b"), &quic.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err = ln.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cli.CloseWithError(0, "")
		srv.CloseWithError(0, "")
	})
	return cli, srv
}

type quicConn = *quic.Conn

// serveOnce serves the next stream of srv into dst; the channel gets
// Serve's result.
func serveOnce(srv quicConn, dst *ckpt.Store) <-chan error {
	served := make(chan error, 1)
	go func() {
		s, err := srv.AcceptStream(context.Background())
		if err != nil {
			served <- err
			return
		}
		served <- Serve(s, dst)
		s.Close()
	}()
	return served
}

// sendOnce replicates key's epoch from src to dst over a new stream of
// the connection pair.
func sendOnce(cli, srv quicConn, src, dst *ckpt.Store, epoch uint64, opt Options) (Stats, error) {
	served := serveOnce(srv, dst)
	s, err := cli.OpenStreamSync(context.Background())
	if err != nil {
		return Stats{}, err
	}
	st, err := Send(s, src, key, epoch, opt)
	s.Close()
	if serr := <-served; err == nil {
		err = serr
	}
	return st, err
}

// damageSegment flips a byte in the middle of the store's values, as a
// disk may: the value it lands in is still read and sent, and the replica
// host must refuse it.
func damageSegment(t *testing.T, s *ckpt.Store) {
	t.Helper()
	path := filepath.Join(s.Path()+".seg", "000001")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaDamagedMidStream: a value that arrives damaged, in the middle
// of a full replica, is refused in one line at both ends, over a pipe and
// over QUIC; the source is not left blocked, and the replica host keeps
// nothing of it and takes the whole replica later.
func TestReplicaDamagedMidStream(t *testing.T) {
	cli, srv := quicPair(t)
	for _, over := range []string{"pipe", "quic"} {
		src, dst := openStore(t), openStore(t)
		mem := memory(4<<20, 5)
		capture(t, src, 1, mem)
		good := bytes.Clone(mustRead(t, filepath.Join(src.Path()+".seg", "000001")))
		damageSegment(t, src)
		var err, serr error
		if over == "pipe" {
			_, err, serr = pipeReplica(t, src, dst, 1)
		} else {
			_, err = sendOnce(cli, srv, src, dst, 1, Options{})
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "checksum mismatch") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: source told: %v", over, err)
		}
		if over == "pipe" && !errors.Is(serr, ckpt.ErrCorrupt) {
			t.Fatalf("%s: replica host says: %v", over, serr)
		}
		if keys, _ := dst.Keys(); len(keys) != 0 {
			t.Fatalf("%s: a refused replica left %v", over, keys)
		}
		if ents, _ := os.ReadDir(dst.Path() + ".seg"); len(ents) != 0 {
			t.Fatalf("%s: a refused replica left segments %v", over, ents)
		}
		if err := os.WriteFile(filepath.Join(src.Path()+".seg", "000001"), good, 0o600); err != nil {
			t.Fatal(err)
		}
		if st, err := sendOnce(cli, srv, src, dst, 1, Options{}); err != nil || st.Sent != 64 {
			t.Fatalf("%s: the replica sent again: %+v %v", over, st, err)
		}
		readBack(t, dst, 1, mem)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gated holds the replica host's frames back from the source until the
// source has written a VALUE: a source that waited for a NEED before
// pushing values would wait for ever (and the test time out).
type gated struct {
	net.Conn
	once sync.Once
	open chan struct{}
}

func (g *gated) Read(p []byte) (int, error) {
	<-g.open
	return g.Conn.Read(p)
}

func (g *gated) Write(p []byte) (int, error) {
	if len(p) >= 5 && p[4] == tValue {
		g.once.Do(func() { close(g.open) })
	}
	return g.Conn.Write(p)
}

// TestReplicaPush: given an epoch the replica host holds (Base), the
// source sends the values of the chunks that changed since it at once,
// before the replica host says what it lacks; a replica host that lacks
// more (it lost Base) asks for the rest and gets it; a Base the source no
// longer holds makes it ask first.
func TestReplicaPush(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	mem := memory(4<<20, 6)
	capture(t, src, 1, mem)
	if _, err, serr := pipeReplica(t, src, dst, 1); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	copy(mem[1<<20:], memory(4096, 7))
	copy(mem[3<<20:], memory(4096, 8))
	capture(t, src, 2, mem)
	push := func(dst *ckpt.Store, base uint64, gate bool) (Stats, error) {
		a, b := net.Pipe()
		served := make(chan error, 1)
		go func() { served <- Serve(b, dst); b.Close() }()
		var rw io.ReadWriter = a
		if gate {
			rw = &gated{Conn: a, open: make(chan struct{})}
		}
		st, err := Send(rw, src, key, 2, Options{Base: base})
		a.Close()
		if serr := <-served; err == nil {
			err = serr
		}
		return st, err
	}
	if st, err := push(dst, 1, true); err != nil || st.Sent != 2 {
		t.Fatalf("pushed against epoch 1: %+v %v", st, err)
	}
	readBack(t, dst, 2, mem)
	fresh := openStore(t)
	if st, err := push(fresh, 1, true); err != nil || st.Sent != 64 {
		t.Fatalf("pushed to a host without epoch 1: %+v %v", st, err)
	}
	readBack(t, fresh, 2, mem)
	fresh = openStore(t)
	if st, err := push(fresh, 9, false); err != nil || st.Sent != 64 {
		t.Fatalf("against an epoch the source does not hold: %+v %v", st, err)
	}
	readBack(t, fresh, 2, mem)
}

// TestReplicaProgress: the progress callback sees the bytes sent grow to
// the bytes to send, which are the bytes the replica cost.
func TestReplicaProgress(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	mem := memory(4<<20, 10)
	capture(t, src, 1, mem)
	var calls [][2]int64
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- Serve(b, dst); b.Close() }()
	st, err := Send(a, src, key, 1, Options{Progress: func(done, total int64) {
		calls = append(calls, [2]int64{done, total})
	}})
	a.Close()
	if serr := <-served; err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if len(calls) < 2 {
		t.Fatalf("%d progress calls for %d bytes", len(calls), st.Bytes)
	}
	for i, c := range calls {
		if c[0] > c[1] || (i > 0 && c[0] <= calls[i-1][0]) {
			t.Fatalf("progress went %v", calls)
		}
	}
	if last := calls[len(calls)-1]; last[0] != st.Bytes || last[1] != st.Bytes {
		t.Fatalf("progress ended at %v, %d bytes sent", last, st.Bytes)
	}
}

// TestReplicaRefusedWhilePushing: a replica host that refuses an OFFER
// while the source pushes more values than the stream's window holds
// says so and reads them until the END, so that the source is not left
// blocked; over QUIC.
func TestReplicaRefusedWhilePushing(t *testing.T) {
	cli, srv := quicPair(t)
	src, dst := openStore(t), openStore(t)
	capture(t, src, 1, memory(4<<20, 11))
	r, err := src.ReplicaOf(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	served := serveOnce(srv, dst)
	s, err := cli.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := ckpt.Key{Job: "other", Worker: 2}
	if err := writeFrame(s, tOffer, encodeOffer(offer{other, 1, r.Manifest})); err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := src.ReadValues(r.Chunks, func(_ ckpt.Hash, v []byte) error {
		b = appendValueFrame(b[:0], 0, v)
		_, err := s.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(s, tEnd, nil); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for {
		typ, body, err := readFrame(s, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if typ == tResult {
			if err := result(body); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `carries the manifest of job "job"`) {
				t.Fatalf("refused with %v", err)
			}
			break
		}
	}
	if err := <-served; !errors.Is(err, ErrProtocol) {
		t.Fatalf("replica host: %v", err)
	}
	if keys, _ := dst.Keys(); len(keys) != 0 {
		t.Fatalf("a refused replica left %v", keys)
	}
}

// onNeed runs f before the replica host's NEED goes out: after the
// replica host decided which chunks it holds, before its commit.
type onNeed struct {
	net.Conn
	once sync.Once
	f    func()
}

func (o *onNeed) Write(p []byte) (int, error) {
	if len(p) >= 5 && p[4] == tNeed {
		o.once.Do(o.f)
	}
	return o.Conn.Write(p)
}

// TestReplicaAgain: the replica host holds every chunk of a checkpoint,
// but only under another key whose epochs are dropped between its NEED
// and its commit (as a newer checkpoint drops older ones): it refuses
// with ErrAgain (and ErrRefused), keeps nothing, and the same checkpoint
// sent again is taken whole.
func TestReplicaAgain(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	mem := memory(1<<20, 7)
	capture(t, src, 1, mem)
	other := ckpt.Key{Job: "other", Worker: 0}
	captureKey(t, dst, other, 1, mem)

	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- Serve(&onNeed{Conn: b, f: func() { dst.DeleteAfter(other, 0) }}, dst)
		b.Close()
	}()
	st, err := Send(a, src, key, 1, Options{})
	a.Close()
	serr := <-served
	if !errors.Is(err, ErrAgain) || !errors.Is(err, ErrRefused) || !errors.Is(serr, ckpt.ErrChunkGone) {
		t.Fatalf("send: %v (sent %d values); serve: %v; want ErrAgain and ckpt.ErrChunkGone", err, st.Sent, serr)
	}
	if !strings.Contains(err.Error(), "replica: refused: ") {
		t.Fatalf("refusal reads %q", err)
	}
	if infos, _ := dst.Epochs(key); len(infos) != 0 {
		t.Fatalf("a refused replica left %v", infos)
	}

	st, err, serr = pipeReplica(t, src, dst, 1)
	if err != nil || serr != nil {
		t.Fatalf("again: send %v, serve %v", err, serr)
	}
	if st.Sent == 0 {
		t.Fatal("again: no value sent, though the replica host holds none now")
	}
	readBack(t, dst, 1, mem)
}

// TestServeThen: durable runs once the replica is durable and before the
// source hears so (its Send has not returned while durable runs); a
// refused replica does not call it.
func TestServeThen(t *testing.T) {
	src, dst := openStore(t), openStore(t)
	mem := memory(1<<20, 3)
	capture(t, src, 1, mem)
	sent := make(chan struct{})
	var during bool
	durable := func() {
		select {
		case <-sent:
		default:
			during = true
		}
		if infos, _ := dst.Epochs(key); len(infos) != 1 {
			t.Errorf("durable called before the replica is in the store: %v", infos)
		}
	}
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- ServeThen(b, dst, durable); b.Close() }()
	_, err := Send(a, src, key, 1, Options{})
	close(sent)
	a.Close()
	if serr := <-served; err != nil || serr != nil {
		t.Fatalf("send %v, serve %v", err, serr)
	}
	if !during {
		t.Fatal("durable ran after the source was told, or not at all")
	}

	// A replica refused (its only copy of a chunk goes before the
	// commit, as in TestReplicaAgain): durable is not called.
	other := ckpt.Key{Job: "other", Worker: 0}
	dst2, mem2 := openStore(t), memory(1<<20, 4)
	captureKey(t, src, ckpt.Key{Job: "job", Worker: 3}, 1, mem2)
	captureKey(t, dst2, other, 1, mem2)
	called := false
	a, b = net.Pipe()
	go func() {
		served <- ServeThen(&onNeed{Conn: b, f: func() { dst2.DeleteAfter(other, 0) }}, dst2, func() { called = true })
		b.Close()
	}()
	_, err = Send(a, src, ckpt.Key{Job: "job", Worker: 3}, 1, Options{})
	a.Close()
	<-served
	if err == nil || called {
		t.Fatalf("a refused replica: send %v, durable called %v", err, called)
	}
}
