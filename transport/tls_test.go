package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSInitCluster(t *testing.T) {
	dir := t.TempDir()
	if err := InitCluster(dir, []string{"a", "b=10.1.2.3,node-b.example", "c"}); err != nil {
		t.Fatal(err)
	}
	ca, err := readCert(filepath.Join(dir, tlsCAFile))
	if err != nil {
		t.Fatal(err)
	}
	cid, err := clusterIDOf(ca)
	if err != nil || len(cid) != 16 || !ca.IsCA {
		t.Fatalf("CA subject %v: cluster ID %q, %v", ca.Subject, cid, err)
	}
	st, err := os.Stat(filepath.Join(dir, tlsCAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v, mode %v", err, st.Mode())
	}
	b, err := readCert(filepath.Join(dir, "hosts", "b.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "localhost", "127.0.0.1", "::1", "10.1.2.3", "node-b.example"} {
		if err := b.VerifyHostname(name); err != nil {
			t.Errorf("b's certificate: %v", err)
		}
	}
	if err := b.VerifyHostname("10.1.2.4"); err == nil {
		t.Error("b's certificate is valid for 10.1.2.4")
	}
	if id, err := HostIDFromCert(b); err != nil || id != "b" {
		t.Errorf("HostIDFromCert = %q, %v", id, err)
	}

	if err := InitCluster(dir, []string{"d"}); !errors.Is(err, ErrClusterExists) {
		t.Errorf("second InitCluster: %v, want ErrClusterExists", err)
	}
	if err := AddHost(dir, "d", "192.168.7.7"); err != nil {
		t.Fatal(err)
	}
	if err := AddHost(dir, "d"); !errors.Is(err, ErrHostExists) {
		t.Errorf("AddHost twice: %v, want ErrHostExists", err)
	}
	for _, h := range []string{"a", "b", "c", "d"} {
		cfg, err := LoadHostTLS(dir, h)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := ClusterID(cfg); err != nil || id != cid {
			t.Errorf("host %s: ClusterID = %q, %v; want %q", h, id, err, cid)
		}
		if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS13 ||
			len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != ALPN {
			t.Errorf("host %s: config %+v", h, cfg)
		}
	}
}

func TestTLSErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"init bad name", InitCluster(dir, []string{"a/b"}), ErrBadHostName},
		{"init empty name", InitCluster(dir, []string{"=1.2.3.4"}), ErrBadHostName},
		{"init twice", InitCluster(dir, []string{"x", "x"}), ErrBadHostName},
		{"add without CA", AddHost(dir, "x"), ErrNoCluster},
		{"load without CA", loadErr(dir, "x"), ErrNoCluster},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
		if tc.err != nil && (!strings.HasPrefix(tc.err.Error(), "transport: ") || strings.Contains(tc.err.Error(), "\n")) {
			t.Errorf("%s: error %q is not one line starting with transport:", tc.name, tc.err)
		}
	}
	if err := InitCluster(dir, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(dir, "nobody"); !errors.Is(err, ErrNoHost) {
		t.Errorf("load unknown host: %v", err)
	}
	// A key that does not match the certificate.
	other := t.TempDir()
	if err := InitCluster(other, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(other, "hosts", "a.key"))
	if err := os.WriteFile(filepath.Join(dir, "hosts", "a.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(dir, "a"); !errors.Is(err, ErrBadCert) {
		t.Errorf("mismatched key: %v", err)
	}
	// A certificate from another cluster.
	crt, _ := os.ReadFile(filepath.Join(other, "hosts", "a.crt"))
	if err := os.WriteFile(filepath.Join(dir, "hosts", "a.crt"), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(dir, "a"); !errors.Is(err, ErrBadCert) {
		t.Errorf("foreign certificate: %v", err)
	}
}

func loadErr(dir, host string) error {
	_, err := LoadHostTLS(dir, host)
	return err
}

// TestTLSHandshake runs plain TLS over TCP between cluster hosts and
// outsiders: only two hosts of the same cluster get through.
func TestTLSHandshake(t *testing.T) {
	dir, foreign := t.TempDir(), t.TempDir()
	if err := InitCluster(dir, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := InitCluster(foreign, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	a := mustTLS(t, dir, "a")
	b := mustTLS(t, dir, "b")
	fb := mustTLS(t, foreign, "b")
	noCert := b.Clone()
	noCert.Certificates = nil

	for _, tc := range []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"same cluster", b, true},
		{"other CA", fb, false},
		{"no certificate", noCert, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, cerr, serr := tlsPair(t, a, tc.client)
			if tc.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v; server: %v", cerr, serr)
				}
				if peer != "b" {
					t.Fatalf("server saw peer %q", peer)
				}
				return
			}
			if serr == nil {
				t.Fatalf("server accepted the client (client: %v)", cerr)
			}
		})
	}
	// A server from another cluster is refused by the client.
	_, cerr, _ := tlsPair(t, fb, a)
	if cerr == nil {
		t.Fatal("client accepted a server of another cluster")
	}
}

func mustTLS(t testing.TB, dir, host string) *tls.Config {
	t.Helper()
	c, err := LoadHostTLS(dir, host)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsPair handshakes a client with a server on loopback TCP and returns the
// client's host ID as the server saw it, and both sides' errors.
func tlsPair(t *testing.T, server, client *tls.Config) (HostID, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		peer HostID
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		// The client's certificate is checked when its first flight
		// arrives; a read proves the handshake finished on both ends.
		var b [1]byte
		if _, err := tc.Read(b[:]); err != nil {
			done <- result{err: err}
			return
		}
		p, err := PeerHostID(tc.ConnectionState())
		done <- result{peer: p, err: err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client = client.Clone()
	client.ServerName = "localhost"
	tc := tls.Client(c, client)
	cerr := tc.Handshake()
	if cerr == nil {
		_, cerr = tc.Write([]byte{1})
	}
	if cerr != nil {
		c.Close()
	}
	r := <-done
	return r.peer, cerr, r.err
}

func TestTLSHostIDFromCert(t *testing.T) {
	dir := t.TempDir()
	if err := InitCluster(dir, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	ca, err := readCert(filepath.Join(dir, tlsCAFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HostIDFromCert(ca); err == nil {
		t.Error("the CA certificate names a host")
	}
	if _, err := PeerHostID(tls.ConnectionState{}); err == nil {
		t.Error("PeerHostID without certificates")
	}
	if _, err := HostIDFromCert(&x509.Certificate{}); err == nil {
		t.Error("empty certificate names a host")
	}
}

// TestTLSWithALPN: a configuration for another protocol between hosts
// checks peers as strictly, and speaks that protocol only.
func TestTLSWithALPN(t *testing.T) {
	dir, foreign := t.TempDir(), t.TempDir()
	if err := InitCluster(dir, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := InitCluster(foreign, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	with := func(c *tls.Config) *tls.Config {
		w, err := WithALPN(c, "librahost-test/1")
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	a, b, fb := with(mustTLS(t, dir, "a")), with(mustTLS(t, dir, "b")), with(mustTLS(t, foreign, "b"))
	if peer, cerr, serr := tlsPair(t, a, b); cerr != nil || serr != nil || peer != "b" {
		t.Fatalf("same cluster: peer %q, client: %v; server: %v", peer, cerr, serr)
	}
	if _, _, serr := tlsPair(t, a, fb); serr == nil {
		t.Fatal("a host of another cluster was accepted")
	}
	if _, _, serr := tlsPair(t, a, mustTLS(t, dir, "b")); serr == nil {
		t.Fatal("a peer speaking librahost/1 was accepted")
	}
	if _, err := WithALPN(&tls.Config{}, "x"); err == nil {
		t.Fatal("WithALPN took a configuration without a host certificate")
	}
}
