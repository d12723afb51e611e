package wasmbin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// specModules returns the binary modules of wazero's copy of the
// WebAssembly spec tests (every proposal wazero implements), from the
// module cache.
func specModules(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("locating wazero's sources: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "internal", "integration_test")
	var files []string
	for _, dir := range []string{"spectest/v2", "spectest/threads", "spectest/tail-call", "spectest/extended-const",
		"spectest/exception-handling", "spectest/typed-function-references", "fuzzcases"} {
		m, _ := filepath.Glob(filepath.Join(root, dir, "testdata", "*.wasm"))
		files = append(files, m...)
	}
	if len(files) < 1000 {
		t.Fatalf("found only %d spec test modules under %s", len(files), root)
	}
	return files
}

const allFeatures = api.CoreFeaturesV2 | experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExtendedConst | experimental.CoreFeaturesExceptionHandling |
	experimental.CoreFeaturesTypedFunctionReferences

// Every spec test module that wazero accepts is still accepted (validated)
// after InsertPreemption, and every function body in it decodes into
// instructions that cover it exactly.
func TestPreemptSpecModules(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures))
	defer rt.Close(ctx)
	var valid, rewritten int
	for _, f := range specModules(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := rt.CompileModule(ctx, b)
		if err != nil {
			continue // a module the spec tests expect to be refused
		}
		cm.Close(ctx)
		valid++
		if _, err := Parse(b); err != nil {
			continue // typed references' type forms: not read by Parse
		}
		checkBodies(t, f, b)
		out, err := InsertPreemption(b, 0)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Errorf("%s: rewritten module refused: %v", filepath.Base(f), err)
			continue
		}
		cm.Close(ctx)
		rewritten++
	}
	t.Logf("%d valid modules, %d rewritten", valid, rewritten)
	if rewritten < valid*9/10 {
		t.Errorf("only %d of %d valid modules rewritten", rewritten, valid)
	}
}

// checkBodies decodes every function body of b and checks that its
// instructions cover it, end to end.
func checkBodies(t testing.TB, name string, b []byte) {
	t.Helper()
	secs, _ := scan(b)
	for _, s := range secs {
		if s.id != secCode {
			continue
		}
		r := &reader{b: b[s.body:s.end], base: s.body, section: "code"}
		n, err := r.count(2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := uint32(0); i < n; i++ {
			size, _ := r.u32()
			start := r.pos
			r.bytes(size)
			body := r.b[start:r.pos]
			enc, err := roundTrip(body)
			if err != nil {
				t.Fatalf("%s: body %d: %v", filepath.Base(name), i, err)
			}
			if !bytes.Equal(enc, body) {
				t.Fatalf("%s: body %d re-encodes differently", filepath.Base(name), i)
			}
		}
	}
}

// roundTrip decodes a function body and encodes it again from its
// instructions, checking that they follow one another without a gap.
func roundTrip(body []byte) ([]byte, error) {
	r := &reader{b: body}
	if _, err := decodeLocals(r); err != nil {
		return nil, err
	}
	out := append([]byte(nil), body[:r.pos]...)
	instrs, err := decodeInstrs(r, nil)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail("unexpected bytes after the end of a function body")
	}
	at := len(out)
	for _, in := range instrs {
		if in.start != at || in.end <= in.start {
			return nil, r.fail("instructions do not follow one another")
		}
		out = append(out, body[in.start:in.end]...)
		at = in.end
	}
	return out, nil
}
