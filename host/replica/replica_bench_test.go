package replica

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// BenchmarkReplicaQUIC replicates a full checkpoint of a 64 MiB guest and
// an incremental one (1 % of its chunks changed) over a QUIC stream
// between two hosts on loopback, and sends as many bytes down a raw
// quic-go stream in the same run: raw-ratio is the replica's rate over the
// raw stream's.
//
//	go test -run '^$' -bench ReplicaQUIC -benchtime 5x ./host/replica
func BenchmarkReplicaQUIC(b *testing.B) {
	cli, srv := quicPair(b)
	mem := memory(64<<20, 9)
	for _, kind := range []string{"full", "incremental"} {
		b.Run(kind, func(b *testing.B) {
			var repl, raw time.Duration
			var bytes int64
			for i := range b.N {
				b.StopTimer()
				// The stores check no stored values after their commits
				// (ScrubBytes): that background work, after the capture
				// just made, would take the CPU from whichever stream is
				// timed meanwhile, and it is no part of a replica.
				src, dst := openStoreWith(b, ckpt.Config{ScrubBytes: -1}), openStoreWith(b, ckpt.Config{ScrubBytes: -1})
				capture(b, src, 1, mem)
				epoch, opt := uint64(1), Options{}
				if kind == "incremental" {
					if _, err := sendOnce(cli, srv, src, dst, 1, Options{}); err != nil {
						b.Fatal(err)
					}
					for c := range 10 { // 10 of 1024 chunks
						mem[(c*100+i)<<16] ^= 0xff
					}
					capture(b, src, 2, mem)
					epoch, opt = 2, Options{Base: 1} // the source knows the replica holds epoch 1
				}
				b.StartTimer()
				t0 := time.Now()
				st, err := sendOnce(cli, srv, src, dst, epoch, opt)
				if err != nil {
					b.Fatal(err)
				}
				repl += time.Since(t0)
				bytes += st.Bytes
				t0 = time.Now()
				rawSend(b, cli, srv, st.Bytes)
				raw += time.Since(t0)
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/op-sent")
			b.ReportMetric(float64(bytes)/repl.Seconds()/1e6, "replica-MB/s")
			b.ReportMetric(float64(bytes)/raw.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(raw.Seconds()/repl.Seconds(), "raw-ratio")
		})
	}
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
