package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	var b bytes.Buffer
	p := prepareMsg{Job: "j1", N: 2, Placement: []string{"a", "b"}, Args: []string{"x", "-n", "3"}, Module: "m.wasm"}
	body, err := encodePrepare(p, []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	writeMsg(&b, msgPrepare, body)
	writeMsg(&b, msgOutput, encodeOutput(outputMsg{1, 2, 7, []byte("hello\n")}))
	writeJSON(&b, msgExit, exitMsg{Ranks: []int{1}, Codes: []int{3}, Errs: []string{""}})

	typ, body, err := readMsg(&b)
	if err != nil || typ != msgPrepare {
		t.Fatal(typ, err)
	}
	got, mod, err := decodePrepare(body)
	if err != nil || got.Job != "j1" || got.N != 2 || len(got.Args) != 3 || string(mod) != "\x00asm\x01\x00\x00\x00" {
		t.Fatalf("%+v %q %v", got, mod, err)
	}
	typ, body, _ = readMsg(&b)
	o, err := decodeOutput(body)
	if typ != msgOutput || err != nil || o.rank != 1 || o.stream != 2 || o.off != 7 || string(o.p) != "hello\n" {
		t.Fatal(typ, o, err)
	}
	typ, body, _ = readMsg(&b)
	var e exitMsg
	if typ != msgExit || decodeJSON(typ, body, &e) != nil || e.Codes[0] != 3 {
		t.Fatal(typ, e)
	}
	if _, _, err := readMsg(&b); err != io.EOF {
		t.Fatalf("after the last message: %v", err)
	}
}

func TestWireRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", []byte{99, 0, 0, 0, 0}, ErrProtocol},
		{"zero type", []byte{0, 0, 0, 0, 0}, ErrProtocol},
		{"oversized", []byte{byte(msgOutput), 0xff, 0xff, 0xff, 0xff}, ErrProtocol},
		{"truncated body", []byte{byte(msgOutput), 0, 0, 0, 9, 1}, io.ErrUnexpectedEOF},
		{"truncated header", []byte{byte(msgOutput), 0}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := readMsg(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	for _, body := range [][]byte{
		nil,
		{0, 0, 0, 200, '{', '}'},
		append([]byte{0, 0, 0, 2}, "{}"...),
		append([]byte{0, 0, 0, 26}, `{"job":"j","n":2,"placemen`...),
		append([]byte{0, 0, 0, 35}, `{"job":"j","n":2,"placement":["a"]}`...),
		append([]byte{0, 0, 0, 40}, `{"job":"j","n":-1,"placement":["a","b"]}`...),
		append([]byte{0, 0, 0, 61}, `{"job":"j","n":1,"placement":["a"],"checkpoint_overhead":1.5}`...),
		append([]byte{0, 0, 0, 62}, `{"job":"j","n":1,"placement":["a"],"checkpoint_overhead":-0.1}`...),
	} {
		if _, _, err := decodePrepare(body); !errors.Is(err, ErrProtocol) {
			t.Errorf("decodePrepare(%q) = %v", body, err)
		}
	}
	if _, err := decodeOutput([]byte{0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrProtocol) {
		t.Errorf("stream 3: %v", err)
	}
}

// FuzzControlMessages feeds arbitrary bytes to the control stream reader
// and to the decoder of each message type: none may panic, and each
// either decodes or refuses with ErrProtocol or a short read.
func FuzzControlMessages(f *testing.F) {
	var b bytes.Buffer
	body, _ := encodePrepare(prepareMsg{Job: "j", N: 1, Placement: []string{"a"}}, []byte("\x00asm"))
	writeMsg(&b, msgPrepare, body)
	writeJSON(&b, msgReady, readyMsg{Host: "a", Port: 7000})
	writeJSON(&b, msgStart, startMsg{Addrs: map[string]string{"a": "127.0.0.1:7000"}})
	writeMsg(&b, msgOutput, encodeOutput(outputMsg{0, 1, 0, []byte("out\n")}))
	writeJSON(&b, msgExit, exitMsg{Ranks: []int{0}, Codes: []int{0}, Errs: []string{""}})
	f.Add(b.Bytes())
	f.Add([]byte{byte(msgStatusQuery), 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			typ, body, err := readMsg(r)
			if err != nil {
				if !errors.Is(err, ErrProtocol) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			switch typ {
			case msgPrepare:
				decodePrepare(body)
			case msgOutput:
				decodeOutput(body)
			case msgReady:
				decodeJSON(typ, body, &readyMsg{})
			case msgStart:
				decodeJSON(typ, body, &startMsg{})
			case msgExit:
				decodeJSON(typ, body, &exitMsg{})
			case msgError:
				decodeJSON(typ, body, &errorMsg{})
			case msgStatus:
				decodeJSON(typ, body, &HostStatus{})
			}
		}
	})
}

// TestOutputPrintedOnce: output a rank prints again after a rollback
// (offsets it had reached before) is dropped, the part past what was
// printed kept, each rank and stream counted apart.
func TestOutputPrintedOnce(t *testing.T) {
	pr := outputPrinted{}
	var got []string
	for _, o := range []outputMsg{
		{0, 1, 0, []byte("abc")},
		{0, 1, 3, []byte("def")},
		{0, 2, 0, []byte("err")},    // another stream
		{1, 1, 0, []byte("xyz")},    // another rank
		{0, 1, 0, []byte("abcdef")}, // rolled back to the start: all printed
		{0, 1, 4, []byte("efgh")},   // rolled back into printed bytes
		{0, 1, 8, []byte("ij")},
		{0, 1, 2, []byte("")},
	} {
		got = append(got, string(pr.fresh(o)))
	}
	want := []string{"abc", "def", "err", "xyz", "", "gh", "ij", ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}
