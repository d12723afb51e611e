package job

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// A line longer than the 64 KiB a line writer holds is written in parts,
// with the rank's prefix once, at its start.
func TestLineWriterLongLinePrefix(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := NewLineWriter(&out, &mu, 2, true)
	long := strings.Repeat("x", 100<<10)
	w.Write([]byte(long[:70<<10]))
	w.Write([]byte(long[70<<10:] + "\nnext\n"))
	w.(interface{ Flush() error }).Flush()
	if want := "[2] " + long + "\n[2] next\n"; out.String() != want {
		t.Fatalf("got %d bytes with %d prefixes, want one line of %d bytes then [2] next", out.Len(), strings.Count(out.String(), "[2] "), len(long))
	}
}
