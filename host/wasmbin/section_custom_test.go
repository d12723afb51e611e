package wasmbin

import (
	"bytes"
	"testing"
)

func TestCustomSection(t *testing.T) {
	base := sampleModule()
	tests := []struct {
		name    string
		in      []byte
		section string
		data    []byte
	}{
		{"append", base, "librahost.build", []byte(`{"format":1}`)},
		{"replace", SetCustomSection(base, "librahost.build", []byte("old")), "librahost.build", []byte("new")},
		{"replace existing", base, "first", []byte("replaced")},
		{"empty data", base, "x", nil},
		{"twice", SetCustomSection(SetCustomSection(base, "d", []byte("1")), "e", nil), "d", []byte("2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := SetCustomSection(tt.in, tt.section, tt.data)
			got, ok := CustomSection(out, tt.section)
			if !ok || !bytes.Equal(got, tt.data) {
				t.Fatalf("CustomSection = %q, %v; want %q", got, ok, tt.data)
			}
			m, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range m.Customs {
				if c.Name == tt.section {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d sections called %q", n, tt.section)
			}
			if _, ok := m.Export("run"); !ok || m.Funcs != 1 {
				t.Errorf("other sections lost")
			}
			if bytes.Equal(out, tt.in) {
				t.Errorf("input returned unchanged")
			}
		})
	}
	if _, ok := CustomSection(base, "missing"); ok {
		t.Error("found a missing section")
	}
	if _, ok := CustomSection([]byte("junk"), "first"); ok {
		t.Error("found a section in junk")
	}
	// The original data is kept in place: "first" stays the first section.
	out := SetCustomSection(base, "first", []byte("z"))
	if m, _ := Parse(out); m.Customs[0].Name != "first" {
		t.Errorf("replaced section moved: %+v", m.Customs)
	}
}
