//go:build linux

package replica

import (
	"context"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/librahost/librahost/ckpt"
)

// BenchmarkReplicaQUIC replicates a full checkpoint of a 64 MiB guest and
// an incremental one (10 of its 1,024 chunks changed) over a QUIC stream
// between two hosts on loopback, and sends as many bytes down raw quic-go
// streams of the same connection in the same run: one whose receiver
// drops the bytes (raw), one whose receiver writes them to a file on the
// same disk as the replica host's store and fdatasyncs it before it
// answers (raw-synced), the three in turns (each first in every third
// iteration, so that none always runs in another's wake). The replica
// host's store syncs, as a host's does. The listener has a host's receive
// windows (transport.TuneAcceptConfig). The incremental checkpoints are
// those of a job that has run a while: the replica host holds the epochs
// the stores keep, and the source knows it holds the one before
// (Options.Base).
//
// raw-ratio is the replica's rate over the raw stream's, over all the
// iterations; raw-ratio-p50 is the median of the iterations' own ratios,
// which a busy machine's bursts of other work sway less; synced-ratio and
// synced-ratio-p50 are the same against raw-synced. cpu-ms are the
// process's CPU times per replica and per stream (both ends).
//
//	go test -run '^$' -bench ReplicaQUIC -benchtime 20x ./host/replica
func BenchmarkReplicaQUIC(b *testing.B) {
	cli, srv := quicPair(b)
	mem := memory(64<<20, 9)
	// The stores check no stored values after their commits (ScrubBytes):
	// that background work, after the capture just made, would take the
	// CPU from whichever stream is timed meanwhile, and it is no part of a
	// replica. The source's store need not sync: its captures are made
	// before the timing.
	srcCfg := ckpt.Config{ScrubBytes: -1, NoSync: true}
	dstCfg := ckpt.Config{ScrubBytes: -1}
	b.Run("full", func(b *testing.B) {
		b.StopTimer()
		src := openStoreWith(b, srcCfg)
		capture(b, src, 1, mem)
		m := measured{dir: b.TempDir()}
		for i := range b.N {
			b.StopTimer()
			dst := openStoreWith(b, dstCfg)
			b.StartTimer()
			m.run(b, i, cli, srv, src, dst, 1, Options{})
			b.StopTimer()
			dst.Close()
		}
		m.report(b)
	})
	b.Run("incremental", func(b *testing.B) {
		b.StopTimer()
		src, dst := openStoreWith(b, srcCfg), openStoreWith(b, dstCfg)
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
		m := measured{dir: b.TempDir()}
		for i := range b.N {
			b.StopTimer()
			next()
			b.StartTimer()
			m.run(b, i, cli, srv, src, dst, epoch, Options{Base: epoch - 1})
		}
		m.report(b)
	})
}

// measured sums the times and bytes of replicas and of raw streams, and
// keeps each iteration's ratios.
type measured struct {
	dir                     string // where raw-synced writes
	repl, raw, synced       time.Duration
	replCPU, rawCPU, synCPU time.Duration
	bytes, rawBytes         int64
	ratios, syncedRatios    []float64
}

// run times a replica of epoch, a raw stream and a raw-synced stream of
// as many bytes, in turns: the replica first in every third iteration,
// the raw stream or the raw-synced one first in the others (of as many
// bytes as the replicas before sent, if none was made yet).
func (m *measured) run(b *testing.B, i int, cli, srv quicConn, src, dst *ckpt.Store, epoch uint64, opt Options) {
	sent := int64(0)
	if i > 0 {
		sent = m.bytes / int64(i)
	}
	var replD, rawD, synD time.Duration
	timed := func(f func(), d, cpu *time.Duration) time.Duration {
		t0, c0 := time.Now(), cpuTime()
		f()
		took := time.Since(t0)
		*d += took
		*cpu += cpuTime() - c0
		return took
	}
	steps := []func(){
		func() {
			replD = timed(func() {
				st, err := sendOnce(cli, srv, src, dst, epoch, opt)
				if err != nil {
					b.Fatal(err)
				}
				sent = st.Bytes
				m.bytes += st.Bytes
			}, &m.repl, &m.replCPU)
		},
		func() {
			n := sent
			rawD = timed(func() { rawSend(b, cli, srv, n, "") }, &m.raw, &m.rawCPU)
			m.rawBytes += n
		},
		func() {
			n := sent
			var file string
			synD = timed(func() { file = rawSend(b, cli, srv, n, m.dir) }, &m.synced, &m.synCPU)
			os.Remove(file)
		},
	}
	for k := range steps {
		steps[(i+k)%len(steps)]()
	}
	m.ratios = append(m.ratios, rawD.Seconds()/replD.Seconds())
	m.syncedRatios = append(m.syncedRatios, synD.Seconds()/replD.Seconds())
}

// report gives the rates, the ratios of the replica's rate over the raw
// streams' (over all the iterations, and the median of the iterations'),
// and the CPU time of each per iteration.
func (m *measured) report(b *testing.B) {
	replica := float64(m.bytes) / m.repl.Seconds()
	raw := float64(m.rawBytes) / m.raw.Seconds()
	synced := float64(m.rawBytes) / m.synced.Seconds()
	n := float64(b.N)
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	b.ReportMetric(float64(m.bytes)/n, "bytes/op-sent")
	b.ReportMetric(replica/1e6, "replica-MB/s")
	b.ReportMetric(raw/1e6, "raw-MB/s")
	b.ReportMetric(synced/1e6, "raw-synced-MB/s")
	b.ReportMetric(replica/raw, "raw-ratio")
	b.ReportMetric(median(m.ratios), "raw-ratio-p50")
	b.ReportMetric(replica/synced, "synced-ratio")
	b.ReportMetric(median(m.syncedRatios), "synced-ratio-p50")
	b.ReportMetric(m.replCPU.Seconds()*1e3/n, "replica-cpu-ms")
	b.ReportMetric(m.rawCPU.Seconds()*1e3/n, "raw-cpu-ms")
	b.ReportMetric(m.synCPU.Seconds()*1e3/n, "raw-synced-cpu-ms")
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawSend sends n bytes down a new stream in 64 KiB writes and waits for
// the peer to have read them all, and if dir is set, to have written them
// to a new file there (in writes of up to 4 MiB, as a replica host writes
// values) and synced it: it returns that file's name.
func rawSend(b testing.TB, cli, srv quicConn, n int64, dir string) string {
	done := make(chan error, 1)
	var file string
	go func() {
		s, err := srv.AcceptStream(context.Background())
		if err != nil {
			done <- err
			return
		}
		if dir == "" {
			_, err = io.Copy(io.Discard, s)
		} else {
			file, err = sink(s, dir)
		}
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
	return file
}

// sink writes what r reads to a new file in dir and syncs it.
func sink(r io.Reader, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "raw")
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return f.Name(), werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return f.Name(), err
		}
	}
	return f.Name(), unix.Fdatasync(int(f.Fd()))
}
