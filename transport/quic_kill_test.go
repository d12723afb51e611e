package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const quicPeerEnv = "LIBRAHOST_TEST_QUIC_PEER"

// TestQUICPeerProcess is the body of the peer process of TestQUICKilledPeer:
// host b of the cluster in $LIBRAHOST_TEST_QUIC_PEER, echoing every buffer.
func TestQUICPeerProcess(t *testing.T) {
	dir := os.Getenv(quicPeerEnv)
	if dir == "" {
		t.Skip("runs as the peer process of TestQUICKilledPeer")
	}
	cfg, err := LoadHostTLS(dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ListenQUIC(QUICConfig{TLS: cfg, KeepAlive: 200 * time.Millisecond, IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", tr.Addr())
	for {
		_, l, err := tr.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				b, err := l.Recv()
				if err != nil || l.Send(b) != nil {
					return
				}
			}
		}()
	}
}

// TestQUICKilledPeer: when the peer's process dies without a word, both
// Recv and Send fail within a few seconds.
func TestQUICKilledPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	c := newQUICCluster(t, "a", "b")
	const idle = time.Second
	a, _ := c.listen(t, "a", func(cfg *QUICConfig) {
		cfg.KeepAlive = 200 * time.Millisecond
		cfg.IdleTimeout = idle
	})

	cmd := exec.Command(os.Args[0], "-test.run=^TestQUICPeerProcess$", "-test.v")
	cmd.Env = append(os.Environ(), quicPeerEnv+"="+c.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the peer process did not start")
	}
	go io.Copy(io.Discard, out)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, l, err := a.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if peer != "b" {
		t.Fatalf("peer %q", peer)
	}
	if err := l.Send([]byte("echo")); err != nil {
		t.Fatal(err)
	}
	if got, err := recvTimeout(t, l, 5*time.Second); err != nil || string(got) != "echo" {
		t.Fatalf("echo: %q, %v", got, err)
	}

	// Recv waits while the peer dies.
	recvErr := make(chan error, 1)
	go func() {
		_, err := l.Recv()
		recvErr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case err := <-recvErr:
		t.Logf("recv failed %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
		if !errors.Is(err, io.EOF) || !errors.Is(err, ErrLinkClosed) {
			t.Fatalf("recv: %v", err)
		}
	case <-time.After(idle + 3*time.Second):
		t.Fatal("the dead peer went unnoticed")
	}
	if err := l.Send([]byte("x")); !errors.Is(err, io.EOF) {
		t.Fatalf("send to the dead peer: %v", err)
	}
}
