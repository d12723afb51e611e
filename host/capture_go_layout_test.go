package host

import (
	"go/build"
	"go/constant"
	"go/importer"
	"go/token"
	"go/types"
	"os/exec"
	"strings"
	"testing"

	lbuild "github.com/librahost/librahost/host/build"
)

// TestGoRuntimeLayout checks the runtime offsets native capture uses
// (capture_go.go) against the runtime of the Go toolchain on PATH, the one
// librahost build uses, as compiled for wasip1/wasm: the runtime package is
// type-checked from that toolchain's sources with the wasm build tags, and
// the gc compiler's layout of runtime.g and runtime.m is taken from it. It
// also checks that the toolchain's release is one librahost build accepts,
// so a new Go release is accepted only once this test passes with it.
func TestGoRuntimeLayout(t *testing.T) {
	goEnv := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	version := goEnv("env", "GOVERSION")
	if err := lbuild.CheckGoVerified(version); err != nil {
		t.Fatalf("%v: check capture_go.go's offsets for it (this test), then add it to build.VerifiedGo", err)
	}
	ctx := build.Default
	defer func() { build.Default = ctx }()
	build.Default.GOROOT = goEnv("env", "GOROOT")
	build.Default.GOOS, build.Default.GOARCH, build.Default.CgoEnabled = "wasip1", "wasm", false
	build.Default.ToolTags = strings.Fields(strings.Trim(goEnv("list", "-f", "{{context.ToolTags}}", "runtime"), "[]"))
	runtime, err := importer.ForCompiler(token.NewFileSet(), "source", nil).Import("runtime")
	if err != nil {
		t.Fatalf("type-checking %s's runtime for wasip1/wasm: %v", version, err)
	}
	sizes := types.SizesFor("gc", "wasm")

	type field struct {
		name string
		off  int64 // capture_go.go's offset
		size int64 // the field's size
	}
	for _, s := range []struct {
		typ    string
		size   int64 // how much of it capture_go.go reads
		fields []field
	}{
		{"g", gSize, []field{{"stack.lo", gStackLo, 8}, {"stack.hi", gStackHi, 8}, {"stackguard0", gStackguard0, 8}, {"m", gM, 8}, {"preempt", gPreempt, 1}}},
		{"m", mSize, []field{{"g0", mG0, 8}, {"curg", mCurg, 8}}},
	} {
		obj := runtime.Scope().Lookup(s.typ)
		if obj == nil {
			t.Fatalf("%s: no runtime.%s", version, s.typ)
		}
		st := obj.Type().Underlying().(*types.Struct)
		if real := sizes.Sizeof(st); s.size > real {
			t.Errorf("%s: runtime.%s is %d bytes, capture reads %d", version, s.typ, real, s.size)
		}
		for _, f := range s.fields {
			off, size, ok := fieldAt(sizes, st, f.name)
			switch {
			case !ok:
				t.Errorf("%s: runtime.%s has no field %s", version, s.typ, f.name)
			case off != f.off || size != f.size:
				t.Errorf("%s: runtime.%s.%s is at %d (%d bytes); capture_go.go uses %d (%d bytes)", version, s.typ, f.name, off, size, f.off, f.size)
			case off+size > s.size:
				t.Errorf("%s: runtime.%s.%s ends at %d, past the %d bytes capture reads", version, s.typ, f.name, off+size, s.size)
			}
		}
	}
	c, ok := runtime.Scope().Lookup("stackPreempt").(*types.Const)
	if !ok {
		t.Fatalf("%s: no runtime.stackPreempt", version)
	}
	if v, exact := constant.Uint64Val(c.Val()); !exact || v != goStackPreempt {
		t.Errorf("%s: runtime.stackPreempt is %v; capture_go.go uses %#x", version, c.Val(), uint64(goStackPreempt))
	}
}

// fieldAt returns the offset and size of a field of st named by a dotted
// path (stack.lo).
func fieldAt(sizes types.Sizes, st *types.Struct, path string) (off, size int64, ok bool) {
	for name := range strings.SplitSeq(path, ".") {
		if st == nil {
			return 0, 0, false // a path through a field that is not a struct
		}
		fields := make([]*types.Var, st.NumFields())
		for i := range fields {
			fields[i] = st.Field(i)
		}
		offs := sizes.Offsetsof(fields)
		i := 0
		for i < len(fields) && fields[i].Name() != name {
			i++
		}
		if i == len(fields) {
			return 0, 0, false
		}
		off += offs[i]
		size = sizes.Sizeof(fields[i].Type())
		st, _ = fields[i].Type().Underlying().(*types.Struct)
	}
	return off, size, true
}
