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
	idle, _ := time.ParseDuration(os.Getenv(quicPeerEnv + "_IDLE"))
	tr, err := ListenQUIC(QUICConfig{
		Listen:      os.Getenv(quicPeerEnv + "_ADDR"),
		TLS:         cfg,
		KeepAlive:   200 * time.Millisecond,
		IdleTimeout: idle,
	})
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

	cmd, addr := startQUICPeer(t, c.dir, "", idle)

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
	cmd.Wait()
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

// startQUICPeer starts TestQUICPeerProcess as host b of the cluster in dir,
// listening on listen (any loopback port if empty) with the given idle
// timeout, and returns its address.
func startQUICPeer(t *testing.T, dir, listen string, idle time.Duration) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestQUICPeerProcess$", "-test.v")
	cmd.Env = append(os.Environ(), quicPeerEnv+"="+dir, quicPeerEnv+"_ADDR="+listen, quicPeerEnv+"_IDLE="+idle.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
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
	return cmd, addr
}

// TestQUICRestartedPeer: a peer process that dies and comes back on the
// same address resets the old connection as soon as data reaches it (its
// stateless reset key comes from its host key), long before the idle
// timeout.
func TestQUICRestartedPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := newQUICCluster(t, "a", "b")
	const idle = 20 * time.Second
	a, _ := c.listen(t, "a", func(cfg *QUICConfig) {
		cfg.KeepAlive = 200 * time.Millisecond
		cfg.IdleTimeout = idle
	})
	cmd, addr := startQUICPeer(t, c.dir, "", idle)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, l, err := a.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send([]byte("echo")); err != nil {
		t.Fatal(err)
	}
	if _, err := recvTimeout(t, l, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	killed := time.Now()
	startQUICPeer(t, c.dir, addr, idle)
	// Keep-alive packets are too small to be answered with a reset: data
	// (as the Endpoint's retransmissions would be) draws one.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if l.Send(make([]byte, 100)) != nil {
					return
				}
			}
		}
	}()
	_, err = recvTimeout(t, l, idle/2)
	t.Logf("recv failed %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	var down *LinkDownError
	if !errors.As(err, &down) || !strings.Contains(down.Reason, "stateless reset") {
		t.Fatalf("recv: %v, want a stateless reset", err)
	}
	// The new process takes a new connection.
	_, l2, err := a.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Send([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := recvTimeout(t, l2, 5*time.Second); err != nil || string(got) != "again" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}
