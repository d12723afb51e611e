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
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

func openStore(t testing.TB) *ckpt.Store {
	t.Helper()
	s, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var key = ckpt.Key{Job: "job", Worker: 2}

func capture(t testing.TB, s *ckpt.Store, epoch uint64, mem []byte) {
	t.Helper()
	meta := ckpt.Meta{Key: key, Epoch: epoch, Created: time.Unix(1, 0), Host: []byte("host state"),
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
	st, err := Send(a, src, key, epoch)
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
	src := openStore(t)
	capture(t, src, 1, memory(1<<20, 3))
	a, b := net.Pipe()
	go func() {
		var buf []byte
		readFrame(b, &buf)
		writeFrame(b, tNeed, []byte{0, 0, 0, 99}) // chunk 99 of 16
		io.Copy(io.Discard, b)
	}()
	if _, err := Send(a, src, key, 1); !errors.Is(err, ErrProtocol) {
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
	st, err := sendOnce(cli, srv, src, dst, 1)
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
	ln, err := quic.ListenAddr("127.0.0.1:0", tls("a"), &quic.Config{})
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

// sendOnce replicates key's epoch from src to dst over a new stream of
// the connection pair.
func sendOnce(cli, srv quicConn, src, dst *ckpt.Store, epoch uint64) (Stats, error) {
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
	s, err := cli.OpenStreamSync(context.Background())
	if err != nil {
		return Stats{}, err
	}
	st, err := Send(s, src, key, epoch)
	s.Close()
	if serr := <-served; err == nil {
		err = serr
	}
	return st, err
}
