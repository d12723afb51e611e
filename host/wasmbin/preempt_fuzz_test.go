package wasmbin

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzDecodeBody checks that no function body makes the decoder panic, and
// that a body that decodes is covered by its instructions and encodes back
// to the same bytes; rewritten, it decodes again into the same
// instructions with checks added.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte{0, 0x0b})
	f.Add([]byte{1, 2, 0x7f, 0x03, 0x40, 0x10, 0x05, 0x0c, 0x00, 0x0b, 0x0b})
	f.Add([]byte{0, 0xfd, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1a, 0x0b})
	f.Add([]byte{0, 0xfe, 0x03, 0x00, 0xfc, 0x0a, 0, 0, 0x1f, 0x40, 1, 2, 0, 0x0b, 0x0b})
	f.Add([]byte{0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x00, 0xd2, 0x83, 0x80, 0x80, 0x80, 0x00, 0x0b})
	if b, err := os.ReadFile("testdata/preempt.wasm"); err == nil {
		addBodies(f, b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		enc, err := roundTrip(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if !bytes.Equal(enc, body) {
			t.Fatalf("re-encoded %x, want %x", enc, body)
		}
		rw := fuzzRewrite()
		out, err := rw.body(&reader{b: body}, nil, 0)
		if err != nil {
			t.Fatalf("decoded but not rewritten: %v", err)
		}
		before := rw.instrs
		rw2 := fuzzRewrite()
		if _, err := rw2.body(&reader{b: out}, nil, 0); err != nil {
			t.Fatalf("rewritten body does not decode: %v", err)
		}
		var kept []uint32
		for _, in := range rw2.instrs {
			kept = append(kept, in.op)
		}
		if len(kept) < len(before) {
			t.Fatalf("rewrite lost instructions: %d, had %d", len(kept), len(before))
		}
	})
}

// fuzzRewrite rewrites bodies of type () -> ().
func fuzzRewrite() *preemptRewrite {
	return &preemptRewrite{shift: 1, yield: 1, counter: 3, budget: 100,
		types: []FuncType{{}}, blockTypes: [][]byte{{opEmptyBlock}}}
}

// addBodies adds each function body of module b to the corpus.
func addBodies(f *testing.F, b []byte) {
	secs, err := scan(b)
	if err != nil {
		return
	}
	for _, s := range secs {
		if s.id != secCode {
			continue
		}
		r := &reader{b: b[s.body:s.end]}
		n, _ := r.u32()
		for i := uint32(0); i < n; i++ {
			size, err := r.u32()
			if err != nil {
				return
			}
			body, err := r.bytes(size)
			if err != nil {
				return
			}
			f.Add(append([]byte(nil), body...))
		}
	}
}

// FuzzInsertPreemption checks that no module makes the rewrite panic, that
// its errors are the package's, and that a rewritten module parses with
// one more imported function and the same defined ones.
func FuzzInsertPreemption(f *testing.F) {
	f.Add(sampleModule())
	f.Add(counterModule())
	if b, err := os.ReadFile("testdata/preempt.wasm"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		out, err := InsertPreemption(b, 0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten module does not parse: %v", err)
		}
		if bytes.Equal(out, b) {
			return // it already had the import
		}
		if m2.ImportedFuncs != m.ImportedFuncs+1 || m2.Funcs != m.Funcs || len(m2.Globals) != len(m.Globals)+1 {
			t.Fatalf("rewrite changed more than it adds: %+v", m2)
		}
	})
}
