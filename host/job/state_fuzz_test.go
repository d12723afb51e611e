package job

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/librahost/librahost/transport"
)

// fuzzRankCheckpoints are seeds: the host state of a running rank and of
// an ended one, as job checkpoints store them,
func fuzzRankCheckpoints(tb testing.TB) [][]byte {
	worker := json.RawMessage(`{"version":1,"kind":"go","clock_ns":5000000000,"stdout_pos":120,"stderr_pos":3,"wasi":"e30="}`)
	comm := transport.RankState{Rank: 1, Epoch: 4,
		Sends: []transport.SendState{{Dst: 0, SenderState: transport.SenderState{Next: 2, Entries: []transport.Entry{{Seq: 1, Epoch: 3, Tag: 7, Payload: []byte("p")}}}}},
		Inbox: []transport.Message{{Src: 0, Tag: 2, Epoch: 3, Seq: 5, Data: []byte("m")}}}
	// and the host state of a single run's checkpoint made by an earlier
	// release, which is the Worker's alone.
	out := [][]byte{worker}
	for _, rc := range []rankCheckpoint{
		{Version: rankStateVersion, Worker: worker, StdoutTail: []byte("partial"), MidLine: [2]bool{true, false}, Changes: 9,
			Held: &transport.Message{Src: 2, Tag: 1, Seq: 3, Data: []byte("held")}, Comm: transport.AppendRankState(nil, &comm),
			Run: json.RawMessage(`{"id":"r1"}`)},
		{Version: rankStateVersion, Ended: true, Exit: 3, Comm: transport.AppendRankState(nil, &transport.RankState{Rank: 2})},
	} {
		b, err := json.Marshal(rc)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzRankCheckpointDecode: a rank's job checkpoint state decodes, with
// its channel state and the positions a resume reads from it, or is
// refused with an error; never a panic. What decodes encodes again to
// something that decodes the same.
func FuzzRankCheckpointDecode(f *testing.F) {
	for _, b := range fuzzRankCheckpoints(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, cs, err := decodeRankCheckpoint(b, 1)
		if err != nil {
			return
		}
		rc.positions()
		again, err := json.Marshal(rc)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		rc2, cs2, err := decodeRankCheckpoint(again, 1)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v\n%s", err, again)
		}
		if again2, _ := json.Marshal(rc2); !bytes.Equal(again2, again) {
			t.Fatalf("round trip differs:\n%s\n%s", again, again2)
		}
		if !bytes.Equal(transport.AppendRankState(nil, cs), transport.AppendRankState(nil, cs2)) {
			t.Fatal("channel state differs after a round trip")
		}
	})
}
