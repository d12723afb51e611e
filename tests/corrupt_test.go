package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// prepareState runs the timer guest with frequent checkpoints, kills it,
// and returns the state dir and the stdout file it wrote.
func prepareState(t *testing.T, wasm string) (state, outPath string) {
	t.Helper()
	dir := t.TempDir()
	state = filepath.Join(dir, "st")
	outPath = filepath.Join(dir, "out")
	out := appendTo(t, outPath)
	p := startProc(t, out, nil, "run", "--state", state, "--checkpoint-every", "150ms", "--checkpoint-overhead", "off", wasm)
	p.mustDurable(t, 2)
	p.kill()
	return state, outPath
}

// copyDir copies a state directory.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// editStore changes the newest manifest or chunk of a state dir's store
// behind librahost's back, as a failing disk or a stray process would.
// edit gets the directory of the store's segment files too.
func editStore(t *testing.T, state string, edit func(tx *bolt.Tx, segDir string) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(state, "ckpt.db"), 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return edit(tx, filepath.Join(state, "ckpt.db.seg")) }); err != nil {
		t.Fatal(err)
	}
}

// corruptNewestValue flips the last byte of the chunk value written last:
// refs maps a chunk hash to count uvarint | size uvarint | segment u32 |
// offset u64 (big-endian), the value being in segment file %06d.
func corruptNewestValue(tx *bolt.Tx, segDir string) error {
	var seg uint32
	var end uint64
	err := tx.Bucket([]byte("refs")).ForEach(func(_, v []byte) error {
		_, n := binary.Uvarint(v)
		size, m := binary.Uvarint(v[n:])
		if loc := v[n+m:]; len(loc) == 12 {
			s, e := binary.BigEndian.Uint32(loc), binary.BigEndian.Uint64(loc[4:])+size
			if s > seg || (s == seg && e > end) {
				seg, end = s, e
			}
		}
		return nil
	})
	if err != nil || seg == 0 {
		return fmt.Errorf("no chunk value in a segment (%v)", err)
	}
	f, err := os.OpenFile(filepath.Join(segDir, fmt.Sprintf("%06d", seg)), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, int64(end-1)); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, int64(end-1))
	return err
}

func newest(b *bolt.Bucket) ([]byte, []byte) {
	k, v := b.Cursor().Last()
	return bytes.Clone(k), bytes.Clone(v)
}

// storeSum hashes every key and value of a store's index and the bytes
// of every chunk value the index refers to in the segment files: what a
// checkpoint consists of. Bytes past a segment's committed length that a
// kill left (which the next Open drops) are not part of it.
func storeSum(t *testing.T, state string) [32]byte {
	t.Helper()
	db, err := bolt.Open(filepath.Join(state, "ckpt.db"), 0o644, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.New()
	segs := map[uint32]*os.File{}
	defer func() {
		for _, f := range segs {
			f.Close()
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if string(name) != "refs" {
					return nil
				}
				// count uvarint | size uvarint | segment u32 | offset u64
				_, n := binary.Uvarint(v)
				size, m := binary.Uvarint(v[n:])
				loc := v[n+m:]
				if n <= 0 || m <= 0 || len(loc) != 12 {
					return nil
				}
				seg := binary.BigEndian.Uint32(loc)
				f := segs[seg]
				if f == nil {
					if f, err = os.Open(filepath.Join(state, "ckpt.db.seg", fmt.Sprintf("%06d", seg))); err != nil {
						h.Write([]byte("missing segment"))
						return nil
					}
					segs[seg] = f
				}
				val := make([]byte, size)
				n2, _ := f.ReadAt(val, int64(binary.BigEndian.Uint64(loc[4:])))
				h.Write(val[:n2])
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A corrupt, truncated or newer-format checkpoint is refused with one line
// and nothing in the state dir is changed; --resume then falls back to the
// previous good checkpoint, and the output is still exactly once.
//
// This is the up-front check, which a lazy restore skips for the memory's
// chunks (TestLazyRestoreDamagedChunk): the restores here are eager.
func TestDamagedCheckpoint(t *testing.T) {
	t.Parallel()
	eager := []string{"LIBRAHOST_LAZY=off"} // the restores' and resumes' environment
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state0, out0 := prepareState(t, wasm)
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state0)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two checkpoints:\n%s", ls)
	}
	newestEpoch := strings.Fields(lines[len(lines)-1])[0]
	for _, tc := range []struct {
		name string
		want string
		edit func(tx *bolt.Tx, segDir string) error
	}{
		{"corrupt chunk", "corrupt", corruptNewestValue},
		{"truncated manifest", "truncated", func(tx *bolt.Tx, _ string) error {
			b := tx.Bucket([]byte("manifests"))
			k, v := newest(b)
			return b.Put(k, v[:len(v)/2])
		}},
		{"format version", "format version 9", func(tx *bolt.Tx, _ string) error {
			b := tx.Bucket([]byte("manifests"))
			k, v := newest(b)
			binary.LittleEndian.PutUint32(v[4:], 9)
			return b.Put(k, v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state := filepath.Join(dir, "st")
			copyDir(t, state0, state)
			outPath := filepath.Join(dir, "out")
			os.WriteFile(outPath, readAll(t, out0), 0o644)
			editStore(t, state, tc.edit)
			before := storeSum(t, state)
			rec := fileSum(t, filepath.Join(state, "run.json"))
			_, stderr, code := lhEnv(t, eager, "restore", "--state", state, "--epoch", newestEpoch)
			if code != 1 {
				t.Fatalf("restore of the damaged epoch: exit %d\n%s", code, stderr)
			}
			oneLineError(t, stderr, tc.want)
			if storeSum(t, state) != before {
				t.Fatal("a refused restore changed the checkpoint store")
			}
			if fileSum(t, filepath.Join(state, "run.json")) != rec {
				t.Fatal("a refused restore changed the run record")
			}
			out := appendTo(t, outPath)
			var errb bytes.Buffer
			cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
			cmd.Env = append(os.Environ(), eager...)
			cmd.Stdout, cmd.Stderr = out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("resume: %v\n%s", err, errb.Bytes())
			}
			if !strings.Contains(errb.String(), tc.want) || !strings.Contains(errb.String(), "older checkpoint") {
				t.Fatalf("resume did not report the damaged checkpoint:\n%s", errb.String())
			}
			compareOutput(t, readAll(t, outPath), want)
		})
	}
}

// A checkpoint made by another build of the module is refused, whatever
// the run record says.
func TestCheckpointOfAnotherBuild(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	state, _ := prepareState(t, wasm)
	other := readAll(t, guest(t, "tests/testdata/fdtable"))
	os.WriteFile(filepath.Join(state, "module.wasm"), other, 0o644)
	rec := string(readAll(t, filepath.Join(state, "run.json")))
	sum := sha256.Sum256(other)
	i := strings.Index(rec, `"digest": "`) + len(`"digest": "`)
	rec = rec[:i] + hex.EncodeToString(sum[:]) + rec[i+64:]
	os.WriteFile(filepath.Join(state, "run.json"), []byte(rec), 0o644)
	before := storeSum(t, state)
	_, stderr, code := lh(t, "restore", "--state", state)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "another build")
	if storeSum(t, state) != before {
		t.Fatal("a refused restore changed the checkpoint store")
	}
}
