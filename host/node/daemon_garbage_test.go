package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/transport"
)

// A cluster peer that speaks garbage on the control protocol gets one
// ERROR line per stream (or its stream closed), the host logs one line per
// stream and goes on serving; a peer that asks for another protocol is
// refused in the handshake.
func TestControlGarbage(t *testing.T) {
	addrs, _, logs := startHosts(t, transport.Faults{}, "a")
	c, h := dialAsB(t, addrs[0])
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		in   []byte
		want string // in the ERROR answer; "" for none
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "unknown message"},
		{"zero type", []byte{0, 0, 0, 0, 0}, "unknown message"},
		{"oversized", []byte{byte(msgPrepare), 0xff, 0xff, 0xff, 0xff}, "PREPARE message of"},
		{"exit first", []byte{byte(msgExit), 0, 0, 0, 2, '{', '}'}, "unexpected EXIT message"},
		{"bad prepare", []byte{byte(msgPrepare), 0, 0, 0, 6, 0, 0, 0, 2, '{', '['}, "bad PREPARE message"},
		{"bad prepare length", []byte{byte(msgPrepare), 0, 0, 0, 4, 0xff, 0, 0, 0}, "past the message's end"},
		{"bad cancel", []byte{byte(msgCancel), 0, 0, 0, 1, '['}, "bad CANCEL message"},
		{"cut short", []byte{byte(msgStatusQuery), 0, 0, 0, 9, 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			str, err := h.conn.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			str.Write(tc.in)
			str.Close()
			typ, body, err := readMsg(str)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %s %q", typ, body)
				}
				return
			}
			if err != nil || typ != msgError || !strings.Contains(string(body), tc.want) || strings.Contains(string(body), `\n`) {
				t.Fatalf("got %s %q %v, want an ERROR with %q", typ, body, err, tc.want)
			}
		})
	}
	// Another protocol than librahost's is refused before any stream.
	tc, err := c.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	other := tc.Clone()
	other.NextProtos = []string{"h3"}
	if conn, err := quic.DialAddr(ctx, addrs[0], other, controlQUIC()); err == nil {
		conn.CloseWithError(0, "")
		t.Fatal("a peer speaking h3 was accepted")
	} else if he := hostError(addrs[0], err); he.State() != "refused" || strings.Contains(he.Error(), "\n") {
		t.Fatalf("h3: %v", he)
	}
	if _, errs, _ := QueryStatus(ctx, c, addrs); errs[0] != nil {
		t.Fatalf("the host no longer serves: %v", errs[0])
	}
	log := logs[0].String()
	if strings.Contains(log, "panic") || strings.Count(log, "\n") != 8 {
		t.Fatalf("want one line per bad stream, got:\n%s", log)
	}
}

// dialAsB opens a control connection to the host at addr as host b of the
// test cluster, for tests that speak the protocol themselves; it closes
// when the test ends.
func dialAsB(t *testing.T, addr string) (Client, *hostConn) {
	t.Helper()
	c := Client{ClusterDir: filepath.Join(testDir, "cluster"), As: "b"}
	tc, err := c.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	h, err := dialHost(context.Background(), addr, tc, c.dialTimeout())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.CloseWithError(0, "") })
	return c, h
}
