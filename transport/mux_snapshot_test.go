package transport

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"testing/synctest"
	"time"
)

// take receives what dst's program would, in order: each call names
// (src, tag) as a program's Recv would.
func take(t *testing.T, e *Endpoint, dst uint32, src, tag int32) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := e.Recv(ctx, dst, src, tag)
	if err != nil {
		t.Fatalf("recv %d<-%d tag %d: %v", dst, src, tag, err)
	}
	return m
}

func encodeStates(sts []RankState) [][]byte {
	var out [][]byte
	for i := range sts {
		out = append(out, AppendRankState(nil, &sts[i]))
	}
	return out
}

func decodeStates(t *testing.T, bs [][]byte) []RankState {
	t.Helper()
	var out []RankState
	for _, b := range bs {
		st, err := DecodeRankState(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

// Messages sent before a cut and not yet taken by their receiver's program
// (in its inbox, behind a message of another tag) are taken exactly once
// after a restore into a new Endpoint, in the same order as without the
// restore; sequence numbers continue.
func TestEndpointSnapshotRestore(t *testing.T) {
	// A small window makes the loop refuse and re-admit messages.
	cfg := EndpointConfig{Host: "a", Route: routeMod("a"), Sender: SenderConfig{Window: 64}}
	a := newTestEndpoint(t, cfg)
	a.SetEpoch(0, 4)
	for i := range 40 {
		a.Send(0, 1, int32(i%3), []byte(fmt.Sprintf("0->1 #%d", i)))
	}
	for i := range 10 {
		a.Send(2, 1, 7, []byte(fmt.Sprintf("2->1 #%d", i)))
		a.Send(1, 0, 1, []byte(fmt.Sprintf("1->0 #%d", i)))
	}
	// Rank 1's program takes some messages, out of arrival order by tag.
	for range 5 {
		take(t, a, 1, 0, 2)
	}
	take(t, a, 1, 2, Any)
	take(t, a, 0, 1, 1)

	cut, err := a.Snapshot([]uint32{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	saved := encodeStates(cut)
	if len(cut[0].Sends) != 1 || len(cut[0].Sends[0].Entries) != 0 || cut[0].Sends[0].Next != 41 {
		t.Fatalf("rank 0's sender: %+v", cut[0].Sends)
	}
	if n := len(cut[1].Inbox); n != 35+9 {
		t.Fatalf("rank 1's inbox holds %d messages, want 44", n)
	}

	// What the programs take after the cut, without and with a restore.
	script := func(e *Endpoint) []string {
		var got []string
		for range 35 {
			got = append(got, string(take(t, e, 1, 0, Any).Data))
		}
		for range 9 {
			got = append(got, string(take(t, e, 1, Any, 7).Data))
		}
		for range 9 {
			got = append(got, string(take(t, e, 0, Any, Any).Data))
		}
		e.Send(0, 1, 9, []byte("after"))
		m := take(t, e, 1, 0, 9)
		got = append(got, fmt.Sprintf("%s seq %d epoch %d", m.Data, m.Seq, m.Epoch))
		if m, ok := e.TryRecv(1, Any, Any); ok {
			t.Fatalf("a message too many: %+v", m)
		}
		if m, ok := e.TryRecv(0, Any, Any); ok {
			t.Fatalf("a message too many: %+v", m)
		}
		return got
	}
	want := script(a)

	b := newTestEndpoint(t, cfg)
	if err := b.Restore(decodeStates(t, saved)); err != nil {
		t.Fatal(err)
	}
	got := script(b)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restore:\n%q\nwithout:\n%q", got, want)
	}
	if want[len(want)-1] != "after seq 41 epoch 4" {
		t.Fatalf("last message: %s", want[len(want)-1])
	}
}

// A sender's log entries its receiver had not delivered at the cut (the
// receiver is on another host, or not in the snapshot) are delivered after
// the restore; those it had are not delivered again.
func TestEndpointRestoreDeliversLogged(t *testing.T) {
	cfg := EndpointConfig{Host: "a", Route: routeMod("a")}
	st := []RankState{
		{Rank: 0, Epoch: 2, Sends: []SendState{{Dst: 1, SenderState: SenderState{Next: 6, Entries: []Entry{
			{Seq: 3, Tag: 1, Payload: []byte("three")},
			{Seq: 4, Tag: 1, Payload: []byte("four")},
			{Seq: 5, Tag: 1, Payload: []byte("five")},
		}}, Queued: []Entry{{Tag: 1, Payload: []byte("six")}}}}},
		{Rank: 1, Recvs: []RecvState{{Src: 0, ReceiverState: ReceiverState{Delivered: 3}}},
			Inbox: []Message{{Src: 0, Tag: 1, Seq: 3, Data: []byte("three")}}},
	}
	e := newTestEndpoint(t, cfg)
	if err := e.Restore(decodeStates(t, encodeStates(st))); err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"three", "four", "five", "six"} {
		m := take(t, e, 1, 0, 1)
		if string(m.Data) != w || m.Seq != uint64(3+i) {
			t.Fatalf("message %d: %q seq %d, want %q", i, m.Data, m.Seq, w)
		}
	}
	if m, ok := e.TryRecv(1, Any, Any); ok {
		t.Fatalf("a message too many: %+v", m)
	}
	// The committed cut lets the log go.
	e.StableCut([]RankState{{Rank: 1, Recvs: []RecvState{{Src: 0, ReceiverState: ReceiverState{Delivered: 6}}}}})
	after, err := e.Snapshot([]uint32{0})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(after[0].Sends[0].Entries); n != 0 {
		t.Fatalf("the log still holds %d entries after StableCut", n)
	}
}

func TestRankStateCodec(t *testing.T) {
	st := RankState{Rank: 3, Epoch: 9,
		Sends: []SendState{{Dst: 1, SenderState: SenderState{Next: 3, Entries: []Entry{{Seq: 2, Epoch: 8, Tag: -4, Payload: []byte("x")}}},
			Queued: []Entry{{Epoch: 9, Tag: 5, Payload: []byte{}}}}},
		Recvs: []RecvState{{Src: 0, ReceiverState: ReceiverState{Delivered: 17}}},
		Inbox: []Message{{Src: 0, Tag: 2, Epoch: 8, Seq: 17, Data: []byte("hello")}},
	}
	b := AppendRankState(nil, &st)
	got, err := DecodeRankState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip:\n%+v\n%+v", got, st)
	}
	for i := range len(b) {
		if _, err := DecodeRankState(b[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
}

func FuzzRankStateDecode(f *testing.F) {
	st := RankState{Rank: 1, Sends: []SendState{{Dst: 0, SenderState: SenderState{Next: 2, Entries: []Entry{{Seq: 1, Payload: []byte("p")}}}}},
		Inbox: []Message{{Src: 0, Seq: 1, Data: []byte("m")}}}
	f.Add(AppendRankState(nil, &st))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeRankState(b)
		if err != nil {
			return
		}
		if again := AppendRankState(nil, &st); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// A recovery's Endpoint whose rank is still being read on its host while
// a peer's restored rank already sends to it: what comes before the
// restore is neither delivered nor acked, and arrives once, in order,
// after it. (It was delivered and acked, then dropped by the restore of
// the inbox, and never sent again: the job hung.)
func TestEndpointRestoringHoldsUntilRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		route := func(r uint32) HostID { return map[uint32]HostID{0: "a", 1: "b"}[r] }
		a := newTestEndpoint(t, EndpointConfig{Host: "a", Route: route, Incarnation: 1})
		b := newTestEndpoint(t, EndpointConfig{Host: "b", Route: route, Incarnation: 1, Restoring: []uint32{1}})
		la, lb := Pipe()
		a.AddLink("b", la)
		b.AddLink("a", lb)
		// Rank 0 is restored first, its log holding two messages rank 1
		// had not had at the cut.
		err := a.Restore([]RankState{{Rank: 0, Sends: []SendState{{Dst: 1, SenderState: SenderState{Next: 3,
			Entries: []Entry{{Seq: 1, Payload: []byte("one")}, {Seq: 2, Payload: []byte("two")}}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // every retransmission due
		synctest.Wait()
		if m, ok := b.TryRecv(1, Any, Any); ok {
			t.Fatalf("rank 1 was given %q before its restore", m.Data)
		}
		if err := b.Restore([]RankState{{Rank: 1}}); err != nil {
			t.Fatal(err)
		}
		for i, w := range []string{"one", "two"} {
			if m := take(t, b, 1, 0, Any); string(m.Data) != w || m.Seq != uint64(i+1) {
				t.Fatalf("message %d: %q seq %d, want %q", i, m.Data, m.Seq, w)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if m, ok := b.TryRecv(1, Any, Any); ok {
			t.Fatalf("rank 1 got %q twice", m.Data)
		}
	})
	if _, err := NewEndpoint(EndpointConfig{Host: "a", Route: routeMod("a", "b"), Restoring: []uint32{1}}); err == nil {
		t.Fatal("an Endpoint restoring a rank of another host")
	}
}
