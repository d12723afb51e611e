package replica

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// BenchmarkReplicaQUIC replicates a full checkpoint of a 64 MiB guest and
// an incremental one (10 of its 1,024 chunks changed) over a QUIC stream
// between two hosts on loopback, and sends as many bytes down a raw
// quic-go stream in the same run, the two in turns (the replica first in
// even iterations, the raw stream first in odd ones, so that neither
// always runs in the other's wake): raw-ratio is the replica's rate over
// the raw stream's. The incremental checkpoints are those of a job that
// has run a while: the replica host holds the epochs the stores keep, and
// the source knows it holds the one before (Options.Base).
//
//	go test -run '^$' -bench ReplicaQUIC -benchtime 20x ./host/replica
func BenchmarkReplicaQUIC(b *testing.B) {
	cli, srv := quicPair(b)
	mem := memory(64<<20, 9)
	// The stores check no stored values after their commits (ScrubBytes):
	// that background work, after the capture just made, would take the
	// CPU from whichever stream is timed meanwhile, and it is no part of a
	// replica.
	cfg := ckpt.Config{ScrubBytes: -1}
	b.Run("full", func(b *testing.B) {
		var m measured
		for i := range b.N {
			b.StopTimer()
			src, dst := openStoreWith(b, cfg), openStoreWith(b, cfg)
			capture(b, src, 1, mem)
			b.StartTimer()
			m.run(b, i, cli, srv, src, dst, 1, Options{})
		}
		m.report(b)
	})
	b.Run("incremental", func(b *testing.B) {
		b.StopTimer()
		src, dst := openStoreWith(b, cfg), openStoreWith(b, cfg)
		epoch := uint64(0)
		next := func() {
			epoch++
			for c := range 10 {
				mem[((c*100+int(epoch)*7)%1024)<<16] ^= 0xff
			}
			capture(b, src, epoch, mem)
		}
		next()
		if _, err := sendOnce(cli, srv, src, dst, epoch, Options{}); err != nil {
			b.Fatal(err)
		}
		for range 3 { // the stores keep 3 epochs
			next()
			if _, err := sendOnce(cli, srv, src, dst, epoch, Options{Base: epoch - 1}); err != nil {
				b.Fatal(err)
			}
		}
		var m measured
		for i := range b.N {
			b.StopTimer()
			next()
			b.StartTimer()
			m.run(b, i, cli, srv, src, dst, epoch, Options{Base: epoch - 1})
		}
		m.report(b)
	})
}

// measured sums the times and bytes of replicas and of raw streams.
type measured struct {
	repl, raw       time.Duration
	bytes, rawBytes int64
}

// run times a replica of epoch and a raw stream of as many bytes, in
// turns: the replica first in even iterations, the raw stream first (of
// as many bytes as the replicas before sent) in odd ones.
func (m *measured) run(b *testing.B, i int, cli, srv quicConn, src, dst *ckpt.Store, epoch uint64, opt Options) {
	var sent int64
	replica := func() {
		t0 := time.Now()
		st, err := sendOnce(cli, srv, src, dst, epoch, opt)
		if err != nil {
			b.Fatal(err)
		}
		m.repl += time.Since(t0)
		m.bytes += st.Bytes
		sent = st.Bytes
	}
	if i%2 == 0 {
		replica()
	} else {
		sent = m.bytes / int64(i)
	}
	t0 := time.Now()
	rawSend(b, cli, srv, sent)
	m.raw += time.Since(t0)
	m.rawBytes += sent
	if i%2 == 1 {
		replica()
	}
}

// report gives the rates and raw-ratio, the replica's rate over the raw
// stream's.
func (m *measured) report(b *testing.B) {
	replica := float64(m.bytes) / m.repl.Seconds()
	raw := float64(m.rawBytes) / m.raw.Seconds()
	b.ReportMetric(float64(m.bytes)/float64(b.N), "bytes/op-sent")
	b.ReportMetric(replica/1e6, "replica-MB/s")
	b.ReportMetric(raw/1e6, "raw-MB/s")
	b.ReportMetric(replica/raw, "raw-ratio")
}

// rawSend sends n bytes down a new stream in 64 KiB writes and waits for
// the peer to have read them all.
func rawSend(b *testing.B, cli, srv quicConn, n int64) {
	done := make(chan error, 1)
	go func() {
		s, err := srv.AcceptStream(context.Background())
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(io.Discard, s)
		s.Write([]byte{1})
		s.Close()
		done <- err
	}()
	s, err := cli.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := s.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
