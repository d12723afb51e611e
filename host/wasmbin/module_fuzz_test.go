package wasmbin

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that no input makes the decoder panic, that every error
// is one of the package's, and that whatever parses can be rewritten.
// Its seed corpus lives in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(sampleModule())
	f.Add(counterModule())
	f.Add(SetCustomSection(counterModule(), "librahost.build", []byte(`{"format":1}`)))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrNotWasm) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		out, globals, err := ExportMutableGlobals(b)
		if err != nil {
			t.Fatalf("parsed but not rewritten: %v", err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten module does not parse: %v", err)
		}
		for _, g := range globals {
			if e, ok := m2.Export(g.Name); !ok || e.Kind != KindGlobal || e.Index != g.Index {
				t.Fatalf("global %d not exported as %q", g.Index, g.Name)
			}
		}
		if len(m2.Globals) != len(m.Globals) || m2.Funcs != m.Funcs || len(m2.Imports) != len(m.Imports) {
			t.Fatal("rewrite changed more than the exports")
		}
		withInfo := SetCustomSection(b, "librahost.build", []byte("x"))
		if d, ok := CustomSection(withInfo, "librahost.build"); !ok || !bytes.Equal(d, []byte("x")) {
			t.Fatal("custom section lost")
		}
		if _, err := Parse(withInfo); err != nil {
			t.Fatalf("module with custom section does not parse: %v", err)
		}
	})
}
