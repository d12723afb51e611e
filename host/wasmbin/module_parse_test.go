package wasmbin

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSample(t *testing.T) {
	m, err := Parse(sampleModule())
	if err != nil {
		t.Fatal(err)
	}
	if m.ImportedFuncs != 1 || m.Funcs != 1 || m.NumFuncs() != 2 {
		t.Errorf("funcs: imported %d defined %d", m.ImportedFuncs, m.Funcs)
	}
	wantImports := []Import{
		{Module: "env", Name: "f", Kind: KindFunc, TypeIndex: 0},
		{Module: "env", Name: "g", Kind: KindGlobal, Global: GlobalType{I32, true}},
		{Module: "env", Name: "mem", Kind: KindMemory, Limits: Limits{Min: 1, Max: 100, HasMax: true}},
	}
	if !reflect.DeepEqual(m.Imports, wantImports) {
		t.Errorf("imports:\n got %+v\nwant %+v", m.Imports, wantImports)
	}
	if ft, ok := m.ImportFuncType(m.Imports[0]); !ok || ft.String() != "func[i32] -> []" {
		t.Errorf("import type: %v %v", ft, ok)
	}
	wantGlobals := []Global{
		{Index: 0, ValType: I32, Mutable: true, Imported: true},
		{Index: 1, ValType: I32, Mutable: true},
		{Index: 2, Name: "g2", ValType: I64},
		{Index: 3, ValType: I64, Mutable: true},
	}
	if !reflect.DeepEqual(m.Globals, wantGlobals) {
		t.Errorf("globals:\n got %+v\nwant %+v", m.Globals, wantGlobals)
	}
	if len(m.Memories) != 1 || m.Memories[0].Max != 100 {
		t.Errorf("memories: %+v", m.Memories)
	}
	if e, ok := m.Export("run"); !ok || e.Kind != KindFunc || e.Index != 1 {
		t.Errorf("export run: %+v %v", e, ok)
	}
	if d, ok := m.Custom("first"); !ok || string(d) != "\x01\x02\x03" {
		t.Errorf("custom first: %q %v", d, ok)
	}
	if len(m.Customs) != 2 || m.Customs[1].Name != "name" {
		t.Errorf("customs: %+v", m.Customs)
	}
}

func TestParseSectionOrder(t *testing.T) {
	// datacount goes between element and code, tag between memory and global.
	b := newModule().
		section(secType, u32(1), raw(0x60, 0, 0)).
		section(secFunction, u32(1), u32(0)).
		section(secMemory, u32(1), raw(0), u32(1)).
		section(secTag, u32(0)).
		section(secGlobal, u32(1), raw(byte(I32), 1, 0x41, 0, 0x0b)).
		section(secDataCount, u32(0)).
		section(secCode, u32(1), u32(2), raw(0, 0x0b)).
		section(secData, u32(0)).
		bytes()
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	out, globals, err := ExportMutableGlobals(b)
	if err != nil || len(globals) != 1 {
		t.Fatal(err, globals)
	}
	if _, err := Parse(out); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	good := sampleModule()
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a WebAssembly module (bad magic)"},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00"), "not a WebAssembly module (bad magic)"},
		{"text", []byte("(module)"), "not a WebAssembly module (bad magic)"},
		{"short header", []byte("\x00asm\x01"), "truncated header"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), "unsupported version"},
		{"truncated", good[:len(good)-3], "section size exceeds module"},
		{"section size leb", append(append([]byte{}, header...), 1, 0x80), "unexpected end"},
		{"huge leb", append(append([]byte{}, header...), 1, 0xff, 0xff, 0xff, 0xff, 0x7f), "integer too large"},
		{"unknown section", newModule().section(42).bytes(), "unknown section id 42"},
		{"out of order", newModule().section(secExport, u32(0)).section(secImport, u32(0)).bytes(),
			"import section at offset 0xb: section out of order"},
		{"repeated", newModule().section(secType, u32(0)).section(secType, u32(0)).bytes(), "out of order or repeated"},
		{"datacount after code", newModule().section(secCode, u32(0)).section(secDataCount, u32(0)).bytes(), "out of order"},
		{"trailing", newModule().section(secType, u32(0), raw(0)).bytes(), "unexpected bytes at end of section"},
		{"bad count", newModule().section(secExport, u32(1000)).bytes(), "vector length exceeds section"},
		{"bad valtype", newModule().section(secType, u32(1), raw(0x60, 1, 0x40, 0)).bytes(), "unsupported value type"},
		{"bad kind", newModule().section(secImport, u32(1), name("a"), name("b"), raw(9, 0)).bytes(), "unknown import kind"},
		{"bad utf8", newModule().section(secExport, u32(1), raw(1, 0xff, 0, 0)).bytes(), "name is not UTF-8"},
		{"bad const", newModule().section(secGlobal, u32(1), raw(byte(I32), 0, 0x20, 0, 0x0b)).bytes(),
			"unsupported instruction in constant expression"},
		{"bad custom name", newModule().section(secCustom, raw(5, 'a')).bytes(), "custom section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "wasmbin: ") {
				t.Errorf("error %q, want one line containing %q", msg, tt.want)
			}
			if !errors.Is(err, ErrNotWasm) && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is neither ErrNotWasm nor ErrMalformed", err)
			}
		})
	}
}

func TestParseEveryPrefix(t *testing.T) {
	good := sampleModule()
	for n := 0; n < len(good); n++ {
		if _, err := Parse(good[:n]); err == nil && n != 8 {
			// A prefix that ends exactly between sections is a valid module.
			if _, serr := scan(good[:n]); serr != nil {
				t.Errorf("prefix %d parsed but does not scan", n)
			}
		}
	}
}
