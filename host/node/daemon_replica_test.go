package node

import (
	"io"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/transport"
)

// A host stops on its shutdown while another host of a job keeps a
// replica connection open (a source that hung, or died and whose
// connection has not timed out yet).
func TestShutdownWithReplicaConnOpen(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	as, _, logs := startDaemons(t, transport.Faults{}, "a")
	bLog := &syncBuffer{}
	b, stopB, bDone := listenAt(t, Config{Name: "b", DataDir: filepath.Join(t.TempDir(), "b"), Log: bLog, FailureTimeout: 10 * time.Second})
	ds, logs := []*Daemon{as[0], b}, append(logs, bLog)
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	cfg, _, _ := submitCfg(addrs, 2, ring, "-laps", "2000000000")
	cfg.CheckpointEvery, cfg.Replicas = 100*time.Millisecond, 1
	s := submitAsync(cfg)
	id := waitLog(t, logs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), s.done)[1]
	waitLog(t, logs[1], regexp.MustCompile(`epoch 1 committed`), s.done)

	// As host a: a replica of the job whose OFFER b refuses; the
	// connection stays open, kept alive.
	tc, err := transport.WithALPN(ds[0].tls, replicaALPN)
	if err != nil {
		t.Fatal(err)
	}
	tc = tc.Clone()
	tc.ServerName = "127.0.0.1"
	ua := ds[1].Addr().(*net.UDPAddr)
	conn, err := ds[0].tr.Dial(t.Context(), ua, tc, &quic.Config{KeepAlivePeriod: 100 * time.Millisecond, MaxIdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte{byte(len(id))}, id...)
	msg = append(msg, 0, 0, 0, 2, 1, 99) // OFFER of version 99
	msg = append(msg, 0, 0, 0, 1, 4)     // END
	if _, err := str.Write(msg); err != nil {
		t.Fatal(err)
	}
	var head [5]byte
	if _, err := io.ReadFull(str, head[:]); err != nil || head[4] != 5 {
		t.Fatalf("b's answer: % x, %v", head, err)
	}
	// b waits for a to close the connection; its shutdown must not.
	stopB()
	select {
	case <-bDone:
	case <-time.After(time.Minute): // keep-alives hold it for ever
		t.Fatal("host b did not stop while a replica connection to it stayed open")
	}
	// The job goes on on a, from b's replicas there, until cancelled.
	CancelJob(t.Context(), cfg.Client, addrs[:1], id)
	s.wait(t)
}
