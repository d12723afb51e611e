package wasmbin

// modBuilder assembles small modules by hand for tests.
type modBuilder struct{ b []byte }

func newModule() *modBuilder {
	return &modBuilder{b: append([]byte(nil), header...)}
}

func (m *modBuilder) section(id byte, parts ...[]byte) *modBuilder {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	m.b = appendSection(m.b, id, body)
	return m
}

func (m *modBuilder) bytes() []byte { return m.b }

func u32(v uint32) []byte  { return appendU32(nil, v) }
func name(s string) []byte { return appendName(nil, s) }
func raw(b ...byte) []byte { return b }

// sampleModule has: a type (i32)->(), an imported function, an imported
// mutable global (index 0), an imported memory, three defined globals
// (1: mutable i32, 2: immutable i64, 3: mutable i64), one defined function,
// exports "run" (func 1) and "g2" (global 2), and two custom sections.
func sampleModule() []byte {
	return newModule().
		section(secCustom, name("first"), raw(1, 2, 3)).
		section(secType, u32(1), raw(0x60, 1, byte(I32), 0)).
		section(secImport, u32(3),
			name("env"), name("f"), raw(0), u32(0),
			name("env"), name("g"), raw(3, byte(I32), 1),
			name("env"), name("mem"), raw(2, 1), u32(1), u32(100)).
		section(secFunction, u32(1), u32(0)).
		section(secGlobal, u32(3),
			raw(byte(I32), 1, 0x41), u32(42), raw(0x0b),
			raw(byte(I64), 0, 0x42, 0x7f, 0x0b),
			raw(byte(I64), 1, 0x23), u32(0), raw(0x0b)).
		section(secExport, u32(2),
			name("run"), raw(0), u32(1),
			name("g2"), raw(3), u32(2)).
		section(secCode, u32(1), u32(2), raw(0, 0x0b)).
		section(secCustom, name("name"), raw(0)).
		bytes()
}
