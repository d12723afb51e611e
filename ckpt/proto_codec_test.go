package ckpt

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// codecMsgs are messages with every field set, nil and empty lists apart,
// as the cores send them.
func codecMsgs() []Msg {
	d := func(b byte) Hash { var h Hash; h[0], h[15] = b, ^b; return h }
	rec := &CommitRecord{Epoch: 7, Inc: 2, Place: []HostID{0, 1, 2, 1},
		Holders: [][]HostID{{0, 1}, {1, 2}, {2, 0}, {1, 2}},
		Digests: []RankDigest{{0, d(1)}, {1, d(2)}, {2, d(3)}, {3, d(4)}}}
	return []Msg{
		{Kind: MsgMarker, From: 0, To: 2, Inc: 1, Epoch: 3},
		{Kind: MsgMarker, From: 0, To: 2, Inc: 1, Epoch: 4, Oldest: 3},
		{Kind: MsgDone, From: 2, To: 0, Inc: 1, Epoch: 3, Digests: []RankDigest{{2, d(9)}}, Held: 1500 * time.Millisecond},
		{Kind: MsgDone, From: 1, To: 0, Inc: 1, Epoch: 3, Digests: []RankDigest{}},
		{Kind: MsgDone, From: 1, To: 0, Inc: 1, Epoch: 3, Err: "rank 4: disk full — ß"},
		{Kind: MsgCommit, From: 0, To: 1, Inc: 2, Epoch: 7, Record: rec},
		{Kind: MsgCommit, From: 0, To: 1, Epoch: 1, Record: &CommitRecord{Epoch: 1, Holders: [][]HostID{nil, {}}}},
		{Kind: MsgRollback, From: 0, To: 1, Inc: 3, Epoch: 7, Place: []HostID{0, 1, 1, 1}, Live: []bool{true, true, false}},
		{Kind: MsgRollback, From: 0, To: 1, Inc: 3, Place: []HostID{}, Live: []bool{}},
		{Kind: MsgRecovered, From: 65535, To: 0, Inc: 1<<64 - 1, Epoch: 1<<64 - 1},
		{Kind: MsgResume, From: 0, To: 2, Inc: 3},
		{Kind: MsgStop, From: 0, To: 2, Inc: 3, Err: "rank 1's checkpoint of epoch 7 is on no live host"},
		{Kind: MsgMigrate, From: 0, To: 1, Inc: 3, Rank: 4, Host: 2},
		{Kind: MsgMoved, From: 1, To: 0, Inc: 3, Epoch: 9, Rank: 65535, Host: 2, Ended: true},
		{Kind: MsgMigFailed, From: 1, To: 0, Inc: 3, Rank: 4, Host: 2, Err: "the target h2 made nothing durable for 10s"},
		{Kind: MsgRoute, From: 0, To: 2, Inc: 3, Epoch: 9, Rank: 4, Host: 2, Place: []HostID{0, 2, 2}},
	}
}

func TestMsgCodecRoundTrip(t *testing.T) {
	for _, m := range codecMsgs() {
		b := AppendMsg([]byte("prefix"), m)
		if string(b[:6]) != "prefix" {
			t.Fatalf("%v: AppendMsg changed what it appends to", m)
		}
		got, err := DecodeMsg(b[6:])
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("decoded\n%#v\nwant\n%#v", got, m)
		}
	}
}

// TestMsgCodecRefuses: garbage, truncations and versions this build does
// not read are refused with one line naming the problem.
func TestMsgCodecRefuses(t *testing.T) {
	good := AppendMsg(nil, codecMsgs()[5])
	with := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"newer version", with(func(b []byte) []byte { b[0] = 5; return b }), "version 5, this build reads version 4"},
		{"older version", with(func(b []byte) []byte { b[0] = 3; return b }), "version 3, this build reads version 4"},
		{"held out of range", binary.AppendUvarint(AppendMsg(nil, Msg{Kind: MsgDone})[:15], 1<<63), "held time 9223372036854775808 ns out of range"},
		{"unknown kind", with(func(b []byte) []byte { b[1] = 99; return b }), "unknown kind 99"},
		{"ended flag", setByte(AppendMsg(nil, Msg{Kind: MsgStop}), 14, 2), "ended flag is neither 0 nor 1"},
		{"kind zero", with(func(b []byte) []byte { b[1] = 0; return b }), "unknown kind 0"},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0), "2 bytes past its end"},
		{"host too large", AppendMsg(nil, Msg{Kind: MsgMarker, From: 1 << 16}), "host 65536"},
		{"list longer than the message", []byte{MsgCodecVersion, 1, 0, 0, 0, 0, 0, 200, 1}, "more than the message holds"},
		{"ends early", AppendMsg(nil, Msg{Kind: MsgStop})[:10], "ends early"},
		{"live flag", setByte(AppendMsg(nil, Msg{Kind: MsgRollback, Live: []bool{true}}), 9, 2), "live flag of host 0 is neither 0 nor 1"},
		{"record flag", setByte(AppendMsg(nil, Msg{Kind: MsgStop}), 10, 2), "record flag is neither 0 nor 1"},
		{"bad varint", []byte{MsgCodecVersion, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "bad or missing number"},
		{"bad utf-8", append(AppendMsg(nil, Msg{Kind: MsgStop})[:11:11], 1, 0xff), "not UTF-8"},
	} {
		_, err := DecodeMsg(tc.b)
		if err == nil {
			t.Errorf("%s: decoded", tc.name)
			continue
		}
		if !errors.Is(err, ErrBadMsg) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.want)
		}
	}
	for n := range len(good) {
		if _, err := DecodeMsg(good[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded", n, len(good))
		}
	}
}

func setByte(b []byte, i int, v byte) []byte { b[i] = v; return b }

// FuzzMsgDecode: a control message decodes to one that encodes and
// decodes to itself, or is refused with ErrBadMsg; never a panic.
func FuzzMsgDecode(f *testing.F) {
	for _, m := range codecMsgs() {
		b := AppendMsg(nil, m)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMsg(b)
		if err != nil {
			if !errors.Is(err, ErrBadMsg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%x: refused with %q", b, err)
			}
			return
		}
		again, err := DecodeMsg(AppendMsg(nil, m))
		if err != nil {
			t.Fatalf("%x decoded as %v, whose encoding is refused: %v", b, m, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("%x decoded as %#v, re-encoded as %#v", b, m, again)
		}
	})
}
