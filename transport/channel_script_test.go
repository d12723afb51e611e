package transport

import (
	"bytes"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/internal/scripttest"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/channel scripts")

// TestChannelScripts runs the golden scripts in testdata/channel. A script
// is a sequence of blocks:
//
//	command arg key=value ...
//	----
//	expected output
//	<blank line>
//
// Lines starting with # outside blocks are comments. One Sender (0→1) and
// one Receiver share a "wire": a list of frames in flight that commands
// deliver, drop, duplicate and reorder. Commands:
//
//	config window=N rto=D max=D buffer=N   start over with these settings
//	send tag=T [epoch=E] data=S [n=K]       Send (K copies), then Ready onto the wire
//	wire                                    print the frames in flight
//	deliver seq=N [keep] | deliver all      hand DATA frames to the Receiver (keep: duplicate)
//	drop seq=N | drop all                   lose frames in flight
//	ack [N]                                 Sender.OnAck(N); default: the Receiver's last
//	                                        ack, and Sender.Stable of its stable if any
//	commit N                                Receiver.Commit(N): its acks carry stable
//	tick +D                                 advance the clock, Tick onto the wire
//	reconnect                               the wire is lost, OnReconnect onto it
//	resend                                  the receiver moved: the wire is lost, Resend onto it
//	stable N | rewind N | reset N           Stable, Rewind, Receiver.ResetTo
//	log                                     print the sender log and counters
//	restore                                 State/Restore both into fresh cores
func TestChannelScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/channel/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/channel")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	h := newScriptHarness(SenderConfig{}, ReceiverConfig{})
	scripttest.Run(t, file, *rewrite, h.run)
}

type scriptHarness struct {
	scfg SenderConfig
	rcfg ReceiverConfig
	s    *Sender
	r    *Receiver
	now  time.Time
	wire []Frame
	ack  Frame // the Receiver's last ack
}

func newScriptHarness(sc SenderConfig, rc ReceiverConfig) *scriptHarness {
	return &scriptHarness{scfg: sc, rcfg: rc, s: NewSender(0, 1, sc), r: NewReceiver(0, 1, rc), now: time.Unix(0, 0)}
}

func (h *scriptHarness) put(w *strings.Builder, fs []Frame) {
	for _, f := range fs {
		f.Payload = bytes.Clone(f.Payload)
		h.wire = append(h.wire, f)
		fmt.Fprintf(w, "-> %s\n", f.String())
	}
}

func (h *scriptHarness) deliver(w *strings.Builder, f Frame) {
	d, ack := h.r.OnData(f)
	for _, g := range d {
		fmt.Fprintf(w, "deliver %s\n", g.String())
	}
	if ack != nil {
		h.ack = *ack
		fmt.Fprintf(w, "<- %s\n", ack.String())
	}
}

func (h *scriptHarness) run(line string) string {
	fields := strings.Fields(line)
	cmd, args := fields[0], map[string]string{}
	var pos []string
	for _, a := range fields[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("bad number %q", s))
		}
		return v
	}
	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(strings.TrimPrefix(s, "+"))
		if err != nil {
			panic(fmt.Sprintf("bad duration %q", s))
		}
		return d
	}
	var w strings.Builder
	switch cmd {
	case "config":
		sc, rc := SenderConfig{}, ReceiverConfig{}
		if v, ok := args["window"]; ok {
			sc.Window = int64(num(v))
		}
		if v, ok := args["rto"]; ok {
			sc.RetransmitAfter = dur(v)
		}
		if v, ok := args["max"]; ok {
			sc.MaxRetransmitAfter = dur(v)
		}
		if v, ok := args["buffer"]; ok {
			rc.MaxBuffered = int(num(v))
		}
		*h = *newScriptHarness(sc, rc)
	case "send":
		n := 1
		if v, ok := args["n"]; ok {
			n = int(num(v))
		}
		tag, _ := strconv.Atoi(args["tag"])
		var epoch uint64
		if v, ok := args["epoch"]; ok {
			epoch = num(v)
		}
		for range n {
			if h.s.Send(h.now, int32(tag), epoch, []byte(args["data"])) {
				fmt.Fprintln(&w, "ok")
			} else {
				fmt.Fprintln(&w, "full")
			}
		}
		h.put(&w, h.s.Ready())
	case "wire":
		for _, f := range h.wire {
			fmt.Fprintln(&w, f.String())
		}
	case "deliver", "drop":
		var take []Frame
		if slices.Contains(pos, "all") {
			take, h.wire = h.wire, nil
		} else {
			seq := num(args["seq"])
			i := slices.IndexFunc(h.wire, func(f Frame) bool { return f.Seq == seq })
			if i < 0 {
				return fmt.Sprintf("no seq %d on the wire", seq)
			}
			take = []Frame{h.wire[i]}
			if !slices.Contains(pos, "keep") {
				h.wire = slices.Delete(h.wire, i, i+1)
			}
		}
		for _, f := range take {
			if cmd == "drop" {
				fmt.Fprintf(&w, "lost %s\n", f.String())
			} else {
				h.deliver(&w, f)
			}
		}
	case "ack":
		if len(pos) > 0 {
			h.s.OnAck(num(pos[0]))
		} else {
			h.s.OnAck(h.ack.Cum)
			if h.ack.Stable > 0 {
				h.s.Stable(h.ack.Stable)
				fmt.Fprintf(&w, "log=%d ", len(h.s.Log()))
			}
		}
		fmt.Fprintf(&w, "acked=%d unacked=%dB\n", h.s.Acked(), h.s.Unacked())
	case "commit":
		h.r.Commit(num(pos[0]))
		fmt.Fprintf(&w, "stable=%d\n", h.r.Stable())
	case "tick":
		h.now = h.now.Add(dur(pos[0]))
		fmt.Fprintf(&w, "t=%s\n", h.now.Sub(time.Unix(0, 0)))
		h.put(&w, h.s.Tick(h.now))
	case "reconnect":
		h.wire = nil
		h.put(&w, h.s.OnReconnect(h.now))
	case "resend":
		h.wire = nil
		h.put(&w, h.s.Resend(h.now))
	case "stable":
		h.s.Stable(num(pos[0]))
		fmt.Fprintf(&w, "log=%d acked=%d\n", len(h.s.Log()), h.s.Acked())
	case "rewind":
		if err := h.s.Rewind(num(pos[0])); err != nil {
			return "error: " + err.Error()
		}
		fmt.Fprintf(&w, "acked=%d unacked=%dB\n", h.s.Acked(), h.s.Unacked())
	case "reset":
		h.r.ResetTo(num(pos[0]))
		fmt.Fprintf(&w, "delivered=%d stable=%d\n", h.r.Delivered(), h.r.Stable())
	case "log":
		for _, e := range h.s.Log() {
			fmt.Fprintf(&w, "seq=%d epoch=%d tag=%d %q\n", e.Seq, e.Epoch, e.Tag, e.Payload)
		}
		fmt.Fprintf(&w, "next=%d acked=%d unacked=%dB logged=%dB delivered=%d held=%d\n",
			h.s.Next(), h.s.Acked(), h.s.Unacked(), h.s.Logged(), h.r.Delivered(), h.r.Held())
	case "restore":
		ss, rs := h.s.State(), h.r.State()
		h.s, h.r = NewSender(0, 1, h.scfg), NewReceiver(0, 1, h.rcfg)
		if err := h.s.Restore(ss); err != nil {
			return "error: " + err.Error()
		}
		if err := h.r.Restore(rs); err != nil {
			return "error: " + err.Error()
		}
		fmt.Fprintf(&w, "next=%d log=%d unacked=%dB delivered=%d\n", h.s.Next(), len(h.s.Log()), h.s.Unacked(), h.r.Delivered())
	default:
		return "unknown command " + cmd
	}
	return w.String()
}
