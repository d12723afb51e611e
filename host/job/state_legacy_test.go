package job

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A single run's state directory made by the release before the job
// driver (testdata/legacy: run.json, ckpt.db with checkpoints and no
// commit records, the single run's output ledger, files.journal; made by
// legacy.c, stopped after its third checkpoint) resumes: the output goes
// on where it stopped, each byte once, without a warning; `ckpt ls`
// lists its checkpoints; and the resumed run checkpoints on.
func TestLegacyRunResumes(t *testing.T) {
	state := filepath.Join(t.TempDir(), "st")
	if err := os.CopyFS(state, os.DirFS("testdata/legacy/state")); err != nil {
		t.Fatal(err)
	}
	list, err := ListCheckpoints(state)
	if err != nil || len(list) != 3 || list[2].Epoch != 3 || list[2].Workers != 0 {
		t.Fatalf("ckpt ls: %v, %+v", err, list)
	}
	printed, _ := os.ReadFile("testdata/legacy/printed")
	want, _ := os.ReadFile("testdata/legacy/output")
	var out, log bytes.Buffer
	cfg := Config{StateDir: state, Resume: true, Stdout: &out, Log: &log, Verbose: true, CacheDir: filepath.Join(guests.Dir, "wazero")}
	if code, err := Run(context.Background(), cfg); code != 0 || err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, log.Bytes())
	}
	if got := append(bytes.Clone(printed), out.Bytes()...); !bytes.Equal(got, want) {
		t.Fatalf("output:\n%s\nwant:\n%s\nlog:\n%s", got, want, log.Bytes())
	}
	if !bytes.Contains(log.Bytes(), []byte("resumed from checkpoint 3")) || bytes.Contains(log.Bytes(), []byte("warning")) {
		t.Fatalf("log:\n%s", log.Bytes())
	}
	if code, err := Run(context.Background(), cfg); code != 0 || err != nil || !bytes.Contains(log.Bytes(), []byte("already finished")) {
		t.Fatalf("resume of the finished run: exit %d: %v\n%s", code, err, log.Bytes())
	}
}
