package transport

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseFaults(t *testing.T) {
	good := []struct {
		spec string
		want Faults
	}{
		{"", Faults{}},
		{"drop=0.2,dup=0.1,reorder=0.1,delay=5ms,seed=7", Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Delay: 5 * time.Millisecond, Seed: 7}},
		{" jitter = 1ms , duplicate=1 ,", Faults{Jitter: time.Millisecond, Duplicate: 1}},
	}
	for _, c := range good {
		got, err := ParseFaults(c.spec)
		if err != nil || got != c.want {
			t.Errorf("%q: got %+v, %v; want %+v", c.spec, got, err, c.want)
		}
		if again, err := ParseFaults(got.String()); err != nil || again != got {
			t.Errorf("%q: String does not parse back: %v", c.spec, err)
		}
	}
	for _, spec := range []string{"drop", "drop=x", "drop=1.5", "dup=-0.1", "delay=5", "delay=-1s", "seed=-1", "loss=0.1", "drop=NaN"} {
		if _, err := ParseFaults(spec); !errors.Is(err, ErrFaultSpec) {
			t.Errorf("%q: got %v, want ErrFaultSpec", spec, err)
		}
	}
	t.Setenv(FaultsEnv, "drop=0.5,seed=3")
	if f, ok, err := FaultsFromEnv(); !ok || err != nil || f.Drop != 0.5 || f.Seed != 3 {
		t.Errorf("from env: %+v %v %v", f, ok, err)
	}
	t.Setenv(FaultsEnv, "bogus")
	if _, _, err := FaultsFromEnv(); !errors.Is(err, ErrFaultSpec) {
		t.Errorf("bad env: %v", err)
	}
}

// faultTrace sends n numbered buffers through a FaultLink over a Pipe and
// returns what arrives.
func faultTrace(t *testing.T, f Faults, n int) []string {
	a, b := Pipe()
	fa := WithFaults(a, f)
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			buf, err := b.Recv()
			if err != nil || string(buf) == "end" {
				return
			}
			got = append(got, string(buf))
		}
	}()
	fa.Send([]byte("hello"))
	for i := range n {
		if err := fa.Send(fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(f.Delay + f.Jitter + time.Millisecond)
	// The pipe keeps order: once the receiver sees this marker, sent past
	// the fault layer, it has everything the faults let through.
	a.Send([]byte("end"))
	<-done
	fa.Close()
	return got
}

func TestFaultsDeterministic(t *testing.T) {
	f := Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Seed: 7}
	n := 100 // fits in the pipe
	x, y := faultTrace(t, f, n), faultTrace(t, f, n)
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("same seed, different faults:\n%v\n%v", x, y)
	}
	f.Seed = 8
	if z := faultTrace(t, f, n); reflect.DeepEqual(x, z) {
		t.Fatal("different seeds, same faults")
	}
	// Roughly the asked-for rates.
	seen, dups, late := map[string]int{}, 0, 0
	last := -1
	for _, s := range x[1:] {
		seen[s]++
		if seen[s] == 2 {
			dups++
		}
		var v int
		fmt.Sscan(s, &v)
		if v < last {
			late++
		}
		last = max(last, v)
	}
	if lost := n - len(seen); lost < 8 || lost > 35 || dups < 2 || dups > 25 || late < 2 {
		t.Fatalf("lost %d, duplicated %d, late %d of %d", lost, dups, late, n)
	}
	if got := faultTrace(t, Faults{}, n); len(got) != n+1 {
		t.Fatalf("no faults: %d of %d arrived", len(got), n)
	}
}

func TestFaultsDelayAndPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pipe()
		fa := WithFaults(a, Faults{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 1})
		fb := WithFaults(b, Faults{})
		fa.Send([]byte("hello")) // the first buffer passes unharmed
		if buf, _ := fb.Recv(); string(buf) != "hello" {
			t.Fatalf("first buffer: %q", buf)
		}
		fb.Send([]byte("hello"))
		if buf, _ := fa.Recv(); string(buf) != "hello" {
			t.Fatalf("first buffer: %q", buf)
		}
		start := time.Now()
		for i := range 20 {
			fa.Send([]byte{byte(i)})
		}
		seen := map[byte]bool{}
		for range 20 {
			buf, err := fb.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 10*time.Millisecond || d >= 20*time.Millisecond {
				t.Fatalf("delivered after %v", d)
			}
			seen[buf[0]] = true
		}
		if len(seen) != 20 {
			t.Fatalf("%d distinct buffers", len(seen))
		}

		// A partition drops both ways until it ends.
		fa.Partition(time.Now().Add(2 * time.Second))
		fb.Partition(time.Now().Add(2 * time.Second))
		fa.Send([]byte("lost"))
		fb.Send([]byte("lost too"))
		time.Sleep(time.Second)
		fb.Heal()
		fb.Send([]byte("back"))
		time.Sleep(time.Second + time.Millisecond)
		fa.Send([]byte("after"))
		if buf, err := fb.Recv(); err != nil || string(buf) != "after" {
			t.Fatalf("after partition: %q %v", buf, err)
		}
		if buf, err := fa.Recv(); err != nil || string(buf) != "back" {
			t.Fatalf("healed side: %q %v", buf, err)
		}
		fa.Close()
		if _, err := fb.Recv(); err != io.EOF {
			t.Fatalf("after close: %v", err)
		}
		if err := fa.Send([]byte("x")); err != nil {
			// Delayed sends report the link's error later.
			t.Logf("send after close: %v", err)
		}
	})
}

func TestPipe(t *testing.T) {
	a, b := Pipe()
	buf := []byte("hello")
	if err := a.Send(buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'j' // Send copied it
	if got, err := b.Recv(); err != nil || string(got) != "hello" {
		t.Fatalf("got %q %v", got, err)
	}
	// Bounded: the 129th buffer blocks until one is taken.
	for range pipeDepth {
		b.Send([]byte("x"))
	}
	sent := make(chan error)
	go func() { sent <- b.Send([]byte("y")) }()
	select {
	case <-sent:
		t.Fatal("send past the bound did not block")
	case <-time.After(20 * time.Millisecond):
	}
	a.Recv()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := a.Recv(); err != io.EOF && err != nil {
		t.Fatalf("recv after close: %v", err)
	}
	if err := a.Send([]byte("z")); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("send after close: %v", err)
	}
	for {
		if _, err := a.Recv(); err == io.EOF {
			break
		}
	}
}
