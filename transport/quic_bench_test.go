package transport

import (
	"context"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// Benchmarks of the QUIC link against quic-go used directly, on loopback:
//
//	go test -run '^$' -bench 'QUIC' -benchtime 3s ./transport

func benchLinkPair(b *testing.B) (ab, ba Link) {
	b.Helper()
	c := newQUICCluster(b, "a", "b")
	ta, _ := c.listen(b, "a")
	tb, _ := c.listen(b, "b")
	return quicConnect(b, ta, tb)
}

// benchRawPair connects two quic-go connections with the same TLS and QUIC
// settings as the link, and opens one stream from the client.
func benchRawPair(b *testing.B, datagrams bool) (cli, srv *quic.Conn) {
	b.Helper()
	c := newQUICCluster(b, "a", "b")
	var t QUICTransport
	t.cfg, _, _ = QUICConfig{TLS: c.tls(b, "a")}.withDefaults()
	conf := t.quicConfig(false)
	conf.EnableDatagrams = datagrams
	ln, err := quic.ListenAddr("127.0.0.1:0", c.tls(b, "a"), conf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err = quic.DialAddr(ctx, ln.Addr().String(), c.tls(b, "b"), conf)
	if err != nil {
		b.Fatal(err)
	}
	srv, err = ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cli.CloseWithError(0, "")
		srv.CloseWithError(0, "")
	})
	return cli, srv
}

func benchRawStreams(b *testing.B) (w, r *quic.Stream) {
	cli, srv := benchRawPair(b, false)
	ws, err := cli.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// A stream reaches the peer with its first byte.
	if _, err := ws.Write([]byte{0}); err != nil {
		b.Fatal(err)
	}
	rs, err := srv.AcceptStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(rs, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return ws, rs
}

// BenchmarkQUICThroughput sends b.N buffers one way and waits for the last.
func BenchmarkQUICThroughput(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		name := map[int]string{4 << 10: "4KiB", 64 << 10: "64KiB"}[size]
		b.Run("link-"+name, func(b *testing.B) {
			ab, ba := benchLinkPair(b)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			go func() {
				for range b.N {
					if err := ab.Send(buf); err != nil {
						return
					}
				}
			}()
			for range b.N {
				if _, err := ba.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw-"+name, func(b *testing.B) {
			w, r := benchRawStreams(b)
			buf := make([]byte, size)
			rbuf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := w.Write(buf); err != nil {
						return
					}
				}
			}()
			for range b.N {
				if _, err := io.ReadFull(r, rbuf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQUICSmallFrames sends buffers of batched 64-byte frames, as the
// Endpoint's coalescing makes them, and reports frames per second.
func BenchmarkQUICSmallFrames(b *testing.B) {
	const frame = 64
	for _, batch := range []int{1, 16, 256, 1024} {
		b.Run("batch-"+strconv.Itoa(batch), func(b *testing.B) {
			ab, ba := benchLinkPair(b)
			buf := make([]byte, frame*batch)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			start := time.Now()
			go func() {
				for range b.N {
					if err := ab.Send(buf); err != nil {
						return
					}
				}
			}()
			frames := 0
			for range b.N {
				got, err := ba.Recv()
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off+frame <= len(got); off += frame {
					frames++
				}
			}
			b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "msg/s")
		})
	}
}

// BenchmarkQUICPingPong measures round trips of 64-byte messages.
func BenchmarkQUICPingPong(b *testing.B) {
	const size = 64
	b.Run("link", func(b *testing.B) {
		ab, ba := benchLinkPair(b)
		go func() {
			for {
				m, err := ba.Recv()
				if err != nil || ba.Send(m) != nil {
					return
				}
			}
		}()
		msg := make([]byte, size)
		rtts := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if err := ab.Send(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := ab.Recv(); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
		}
		reportPercentiles(b, rtts)
	})
	b.Run("raw", func(b *testing.B) {
		w, r := benchRawStreams(b)
		go func() {
			m := make([]byte, size)
			for {
				if _, err := io.ReadFull(r, m); err != nil {
					return
				}
				if _, err := r.Write(m); err != nil {
					return
				}
			}
		}()
		msg := make([]byte, size)
		rtts := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if _, err := w.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(w, msg); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
		}
		reportPercentiles(b, rtts)
	})
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	p := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds())
	}
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

// BenchmarkQUICDatagram sends 1 KiB QUIC datagrams as fast as quic-go
// takes them, for comparison with streams: it reports the bytes that
// arrived and the share lost.
func BenchmarkQUICDatagram(b *testing.B) {
	const size = 1024
	cli, srv := benchRawPair(b, true)
	if !cli.ConnectionState().SupportsDatagrams.Remote {
		b.Skip("no datagram support")
	}
	buf := make([]byte, size)
	b.SetBytes(size)
	b.ResetTimer()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			if err := cli.SendDatagram(buf); err != nil {
				return
			}
		}
	}()
	got := 0
	last := start
	for got < b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := srv.ReceiveDatagram(ctx)
		cancel()
		if err != nil {
			break
		}
		got++
		last = time.Now()
	}
	elapsed := last.Sub(start)
	<-done
	b.ReportMetric(float64(got*size)/elapsed.Seconds()/1e6, "delivered-MB/s")
	b.ReportMetric(100*float64(b.N-got)/float64(b.N), "lost-%")
}

// BenchmarkQUICLinkVsRaw alternates rounds of 4 MiB sent as 4 KiB buffers
// (or 64 KiB) over a link and over a raw quic-go stream, so that both see the same
// machine load, and reports both rates and their ratio.
func BenchmarkQUICLinkVsRaw(b *testing.B) {
	b.Run("4KiB", func(b *testing.B) { benchLinkVsRaw(b, 4<<10) })
	b.Run("64KiB", func(b *testing.B) { benchLinkVsRaw(b, 64<<10) })
}

func benchLinkVsRaw(b *testing.B, size int) {
	round := (4 << 20) / size
	ab, ba := benchLinkPair(b)
	w, r := benchRawStreams(b)
	buf := make([]byte, size)
	rbuf := make([]byte, size)
	var linkTime, rawTime time.Duration
	b.SetBytes(2 * int64(size))
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += round {
		n := min(round, b.N-sent)
		t0 := time.Now()
		go func() {
			for range n {
				if ab.Send(buf) != nil {
					return
				}
			}
		}()
		for range n {
			if _, err := ba.Recv(); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		go func() {
			for range n {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}()
		for range n {
			if _, err := io.ReadFull(r, rbuf); err != nil {
				b.Fatal(err)
			}
		}
		linkTime += t1.Sub(t0)
		rawTime += time.Since(t1)
	}
	mb := float64(b.N) * float64(size) / 1e6
	b.ReportMetric(mb/linkTime.Seconds(), "link-MB/s")
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MB/s")
	b.ReportMetric(rawTime.Seconds()/linkTime.Seconds(), "link/raw")
}
