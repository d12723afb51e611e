package wasi

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	wzwasi "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// runIO runs the io guest once with args on dir and returns how long the
// run took. impl is "wazero" (wazero's own WASI), "librahost" (this
// package) or "journal" (this package with a journal and undo on).
func runIO(b *testing.B, impl, dir string, args ...string) time.Duration {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(guestCache))
	defer r.Close(ctx)
	argv := append([]string{"guest", "io"}, args...)
	mc := wazero.NewModuleConfig()
	var s *System
	if impl == "wazero" {
		wzwasi.MustInstantiate(ctx, r)
		mc = mc.WithArgs(argv...).WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, "/data"))
	} else {
		cfg := Config{Args: argv, Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}}
		if impl == "journal" {
			cfg.Journal = filepath.Join(b.TempDir(), "journal")
		}
		var err error
		if s, err = New(cfg); err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if impl == "journal" {
			if _, err := s.CheckpointFiles(0); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Instantiate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	mod, err := r.CompileModule(ctx, guestWasm)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	_, err = r.InstantiateModule(ctx, mod, mc)
	d := time.Since(start)
	var ee *sys.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 0) {
		b.Fatal(err)
	}
	return d
}

// BenchmarkFileIO runs the same file I/O guest under wazero's WASI and
// under this package in the same iterations, and reports each one's time
// per run and the ratio of wazero's time to ours (speed relative to
// wazero; ≥ 1 is as fast or faster).
func BenchmarkFileIO(b *testing.B) {
	for _, bc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"seq64MiB", func(dir string) []string { return []string{"seq", "/data/f", "64"} }},
		{"rand4KiBx20000", func(dir string) []string {
			f, _ := os.Create(filepath.Join(dir, "f"))
			f.Write(bytes.Repeat([]byte{1}, 64<<20))
			f.Close()
			return []string{"rand", "/data/f", "20000"}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// The journal's own writes would slow whichever run follows
			// them, so runs with a journal are measured apart.
			impls := []string{"librahost", "wazero"}
			dirs := map[string]string{}
			args := map[string][]string{}
			// Both run on the same file, so that the page cache treats
			// them alike.
			shared := b.TempDir()
			for _, impl := range append(impls, "journal") {
				dirs[impl] = shared
				if impl == "journal" {
					dirs[impl] = b.TempDir()
				}
				args[impl] = bc.args(dirs[impl])
				runIO(b, impl, dirs[impl], args[impl]...) // warm up
			}
			total := map[string]time.Duration{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate the order: a run pays for the write-back of
				// the previous one's dirty pages.
				for k := range impls {
					impl := impls[(i+k)%len(impls)]
					total[impl] += runIO(b, impl, dirs[impl], args[impl]...)
				}
			}
			for i := 0; i < b.N; i++ {
				total["journal"] += runIO(b, "journal", dirs["journal"], args["journal"]...)
			}
			n := float64(b.N)
			b.ReportMetric(float64(total["wazero"].Milliseconds())/n, "wazero-ms/run")
			b.ReportMetric(float64(total["librahost"].Milliseconds())/n, "ours-ms/run")
			b.ReportMetric(float64(total["journal"].Milliseconds())/n, "journal-ms/run")
			b.ReportMetric(float64(total["wazero"])/float64(total["librahost"]), "speed-vs-wazero")
		})
	}
}

// BenchmarkCheckpointFilesSparse changes 1 MiB (256 random 4 KiB writes)
// of a sparse 1 GiB file per checkpoint and reports the size of the file
// delta and the growth of the undo journal per checkpoint.
func BenchmarkCheckpointFilesSparse(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	journal := filepath.Join(state, "journal")
	h := newHarness(b, Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
	if _, err := h.s.CheckpointFiles(0); err != nil {
		b.Fatal(err)
	}
	fd, e := h.open(3, "big", 0, 0, rightsRW)
	if e != 0 {
		b.Fatal(e)
	}
	const iovAt, dataAt = resAt + 256, scratch + 4096
	data := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	h.write(dataAt, data)
	iov := h.iov(iovAt, dataAt, 4096)
	var delta, grown int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fi, _ := os.Stat(journal)
		before := fi.Size()
		for k := 0; k < 256; k++ {
			off := rng.Int64N(1<<30/4096) * 4096
			if e := h.call("fd_pwrite", uint64(fd), iov, 1, uint64(off), resAt); e != 0 {
				b.Fatal(e)
			}
		}
		blob, err := h.s.CheckpointFiles(uint64(i + 1))
		if err != nil {
			b.Fatal(err)
		}
		delta += int64(len(blob))
		fi, _ = os.Stat(journal)
		grown += fi.Size() - before
		h.s.ReleaseFiles(uint64(i + 1))
	}
	b.ReportMetric(float64(delta)/float64(b.N), "delta-bytes/ckpt")
	b.ReportMetric(float64(grown)/float64(b.N), "journal-bytes/ckpt")
}
