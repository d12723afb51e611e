package wasmbin

import "fmt"

// ValType is a WebAssembly value type.
type ValType byte

// Value types.
const (
	I32       ValType = 0x7f
	I64       ValType = 0x7e
	F32       ValType = 0x7d
	F64       ValType = 0x7c
	V128      ValType = 0x7b
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6f
)

func (t ValType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("valtype(%#x)", byte(t))
}

func (t ValType) valid() bool {
	switch t {
	case I32, I64, F32, F64, V128, FuncRef, ExternRef:
		return true
	}
	return false
}

// ExternKind is the kind of an import or export.
type ExternKind byte

// Extern kinds.
const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
	KindTag    ExternKind = 4
)

func (k ExternKind) String() string {
	switch k {
	case KindFunc:
		return "func"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	case KindTag:
		return "tag"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// FuncType is a function signature from the type section.
type FuncType struct {
	Params, Results []ValType
}

func (f FuncType) String() string {
	return fmt.Sprintf("func%v -> %v", f.Params, f.Results)
}

// Limits are the limits of a memory or table, in pages or elements.
type Limits struct {
	Min    uint64
	Max    uint64 // valid if HasMax
	HasMax bool
	Shared bool
	Is64   bool // memory64
}

// Import is one entry of the import section. TypeIndex is set for functions
// and tags, Global for globals, Limits for memories and tables (with
// RefType for tables).
type Import struct {
	Module    string
	Name      string
	Kind      ExternKind
	TypeIndex uint32
	Global    GlobalType
	Limits    Limits
	RefType   ValType
}

// GlobalType is a global's value type and mutability.
type GlobalType struct {
	ValType ValType
	Mutable bool
}

// Global is one global of the global index space (imported ones first).
// Name is the name of its first export, "" if it has none.
type Global struct {
	Index    uint32
	Name     string
	ValType  ValType
	Mutable  bool
	Imported bool
}

// Export is one entry of the export section.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32
}

// Custom is a custom section. Data aliases the parsed input.
type Custom struct {
	Name string
	Data []byte
}

// Module is what Parse reads from a module.
type Module struct {
	Types         []FuncType
	Imports       []Import
	Exports       []Export
	Globals       []Global // the whole global index space
	Memories      []Limits // imported memories first
	ImportedFuncs int
	Funcs         int // functions defined by the module
	HasStart      bool
	Customs       []Custom
}

// NumFuncs is the size of the function index space.
func (m *Module) NumFuncs() int { return m.ImportedFuncs + m.Funcs }

// Export returns the export called name.
func (m *Module) Export(name string) (Export, bool) {
	for _, e := range m.Exports {
		if e.Name == name {
			return e, true
		}
	}
	return Export{}, false
}

// Custom returns the data of the first custom section called name.
func (m *Module) Custom(name string) ([]byte, bool) {
	for _, c := range m.Customs {
		if c.Name == name {
			return c.Data, true
		}
	}
	return nil, false
}

// ImportFuncType returns the signature of a function import, if its type
// index is valid.
func (m *Module) ImportFuncType(imp Import) (FuncType, bool) {
	if imp.Kind != KindFunc || int(imp.TypeIndex) >= len(m.Types) {
		return FuncType{}, false
	}
	return m.Types[imp.TypeIndex], true
}
