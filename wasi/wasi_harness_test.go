package wasi

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// harness is a System instantiated with a tiny guest that exports each
// import under its own name (a wrapper calling it) and its memory, so tests
// can call every import with chosen arguments.
type harness struct {
	t   testing.TB
	s   *System
	r   wazero.Runtime
	mod api.Module
	ctx context.Context
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	if err := s.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, wrapperModule(), wazero.NewModuleConfig().WithName("harness"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, r: r, mod: mod, ctx: ctx}
	t.Cleanup(func() {
		r.Close(ctx)
		s.Close()
	})
	return h
}

// call calls import name and returns its errno.
func (h *harness) call(name string, args ...uint64) errno {
	h.t.Helper()
	res, err := h.mod.ExportedFunction(name).Call(h.ctx, args...)
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return errno(res[0])
}

func (h *harness) mem() api.Memory { return h.mod.Memory() }

func (h *harness) write(off uint32, b []byte) {
	h.t.Helper()
	if !h.mem().Write(off, b) {
		h.t.Fatalf("write at %d out of range", off)
	}
}

func (h *harness) read(off, n uint32) []byte {
	h.t.Helper()
	b, ok := h.mem().Read(off, n)
	if !ok {
		h.t.Fatalf("read at %d out of range", off)
	}
	return append([]byte(nil), b...)
}

func (h *harness) u32(off uint32) uint32 {
	v, _ := h.mem().ReadUint32Le(off)
	return v
}

func (h *harness) u64(off uint32) uint64 {
	v, _ := h.mem().ReadUint64Le(off)
	return v
}

// wrapperModule encodes the harness guest.
func wrapperModule() []byte {
	type fn struct {
		name    string
		params  []api.ValueType
		results []api.ValueType
	}
	var fns []fn
	for _, f := range hostFuncs() {
		fns = append(fns, fn{f.name, f.params, []api.ValueType{i32}})
	}
	fns = append(fns, fn{"proc_exit", []api.ValueType{i32}, nil})

	vec := func(n int, items ...[]byte) []byte {
		b := uleb(uint64(n))
		for _, it := range items {
			b = append(b, it...)
		}
		return b
	}
	name := func(s string) []byte { return append(uleb(uint64(len(s))), s...) }
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
	}
	var types, imports, funcs, exports, codes [][]byte
	for i, f := range fns {
		ty := append([]byte{0x60}, uleb(uint64(len(f.params)))...)
		for _, p := range f.params {
			ty = append(ty, p)
		}
		ty = append(ty, uleb(uint64(len(f.results)))...)
		for _, r := range f.results {
			ty = append(ty, r)
		}
		types = append(types, ty)
		imp := append(name(ModuleName), name(f.name)...)
		imports = append(imports, append(append(imp, 0x00), uleb(uint64(i))...))
		funcs = append(funcs, uleb(uint64(i)))
		exports = append(exports, append(append(name(f.name), 0x00), uleb(uint64(len(fns)+i))...))
		body := []byte{0x00} // no locals
		for p := range f.params {
			body = append(append(body, 0x20), uleb(uint64(p))...)
		}
		body = append(append(body, 0x10), uleb(uint64(i))...)
		body = append(body, 0x0b)
		codes = append(codes, append(uleb(uint64(len(body))), body...))
	}
	exports = append(exports, append(name("memory"), 0x02, 0x00))
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec(len(types), types...))...)
	m = append(m, section(2, vec(len(imports), imports...))...)
	m = append(m, section(3, vec(len(funcs), funcs...))...)
	m = append(m, section(5, vec(1, []byte{0x00, 0x02}))...)
	m = append(m, section(7, vec(len(exports), exports...))...)
	m = append(m, section(10, vec(len(codes), codes...))...)
	return m
}

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
