package ckpt

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func TestSetFailpoints(t *testing.T) {
	defer SetFailpoints("")
	for _, tc := range []struct {
		spec    string
		wantErr bool
	}{
		{"commit:tx=error", false},
		{"commit:tx=sleep(1ms);commit:gc=error", false},
		{"commit:tx", true},
		{"commit:tx=explode", true},
		{"commit:tx=sleep(forever)", true},
	} {
		err := SetFailpoints(tc.spec)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.spec, err, tc.wantErr)
		}
	}
	if err := SetFailpoints("commit:tx=sleep(20ms);commit:gc=error"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := fail("commit:tx"); err != nil || time.Since(t0) < 20*time.Millisecond {
		t.Fatalf("sleep failpoint: %v after %v", err, time.Since(t0))
	}
	if fail("commit:gc") == nil {
		t.Fatal("error failpoint did not fail")
	}
	if fail("commit:chunks") != nil {
		t.Fatal("an unarmed failpoint failed")
	}
}

// A wait(PATH) failpoint holds the write until the file exists.
func TestFailpointWait(t *testing.T) {
	defer SetFailpoints("")
	path := filepath.Join(t.TempDir(), "go")
	if err := SetFailpoints("commit:tx=wait(" + path + ")"); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		done := make(chan error)
		go func() { done <- fail("commit:tx") }()
		synctest.Wait() // the write is waiting
		select {
		case err := <-done:
			t.Fatalf("the write went on before %s existed: %v", path, err)
		default:
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestSetFailpointsWhileWriting arms and disarms failpoints while captures
// are being written (run with -race).
func TestSetFailpointsWhileWriting(t *testing.T) {
	defer SetFailpoints("")
	s := openTest(t, testConfig(t))
	k := Key{Job: "fp-race"}
	mem := genMemory(256<<10, 31)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			spec := ""
			if i%2 == 0 {
				spec = "commit:gc=sleep(1us)"
			}
			if err := SetFailpoints(spec); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for e := uint64(1); e <= 20; e++ {
		mem[int(e)*cs(s)] ^= 0xff
		capture(t, s, testMeta(k, e), mem)
	}
	close(stop)
	<-done
}

// An error(PATH) failpoint fails the write while the file exists.
func TestFailpointErrorWhile(t *testing.T) {
	defer SetFailpoints("")
	path := filepath.Join(t.TempDir(), "gate")
	if err := SetFailpoints("segment:write=error(" + path + ")"); err != nil {
		t.Fatal(err)
	}
	if err := fail("segment:write"); err != nil {
		t.Fatalf("failed with no %s: %v", path, err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if fail("segment:write") == nil {
		t.Fatalf("did not fail while %s exists", path)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := fail("segment:write"); err != nil {
		t.Fatalf("failed once %s was removed: %v", path, err)
	}
}
