package ckpt

import (
	"errors"
	"testing"
)

// Host state given by HostLater after Capture returned is stored; its
// error fails the capture, and the key's next capture hashes everything
// again.
func TestCaptureHostLater(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "j"}
	mem := genMemory(64<<10, 1)
	known := make(chan []byte, 1)
	meta := testMeta(k, 1)
	meta.Host, meta.HostLater = nil, func() ([]byte, error) { return <-known, nil }
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	known <- []byte("cut after the pause")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	m, err := s.Manifest(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Host) != "cut after the pause" {
		t.Fatalf("host state %q", m.Host)
	}

	meta = testMeta(k, 2)
	meta.HostLater = func() ([]byte, error) { return nil, errors.New("the endpoint closed") }
	p, err = s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); !errors.Is(err, ErrWrite) {
		t.Fatalf("capture whose host state failed: %v, want ErrWrite", err)
	}
	if _, err := s.Manifest(k, 2); err == nil {
		t.Fatal("a manifest of the failed capture was written")
	}
	if st := capture(t, s, testMeta(k, 3), mem); st.Hashed != st.Chunks {
		t.Fatalf("after a failed capture: %d of %d chunks hashed, want all", st.Hashed, st.Chunks)
	}
}
