package wasmbin

import "strings"

// The function import InsertPreemption adds: the host gives it a body that
// returns at once. Its call leaves the guest's compiled code for Go, and
// that is a point where the Go runtime can stop the guest's goroutine
// (for a collection, or to run another goroutine on its thread).
const (
	PreemptModule = "libra"
	PreemptName   = "preempt"
)

// PreemptCounterName is the export name of the counter global that
// InsertPreemption adds: the host may set it to zero (api.MutableGlobal)
// to have the guest call the import at its next loop head or function
// entry that spends from the global. A loop in a function that calls
// nothing spends from a copy in a local, which it loads at the function's
// entry and after each call: it sees the zero only once it calls or
// returns. The counter is not guest state: a capture leaves it out.
const PreemptCounterName = "libra.preempt.counter"

// DefaultPreemptBudget is the work between two calls of the preemption
// import: each loop iteration and each entry of a function that calls
// others spends its instruction count (up to maxPreemptWeight).
// bench/RESULTS.md has the measure behind it.
const DefaultPreemptBudget = 1 << 20

// MaxPreemptBudget is the largest budget: the counter is an i32 that
// starts at most a loop's weight above it.
const MaxPreemptBudget = 1 << 30

// maxPreemptWeight caps what one check spends, so that a large loop body
// whose iterations mostly skip it does not call the import too often.
const maxPreemptWeight = 256

// InsertPreemption returns a copy of b whose code calls the import
// PreemptModule.PreemptName regularly: at the head of every loop and at the
// entry of every function that calls others (recursion without loops), a
// counter global (exported as PreemptCounterName) goes down by the work
// the code ahead may do, and when it passes zero the import is called and
// the counter starts again at budget.
//
// The import is a new function, so every function index of the module
// from the imported functions' count on moves up by one: calls, ref.func,
// exports, the start function, element segments and the name section
// follow. Table indices do not move (Go's wasm port stores those in
// memory as code addresses). DWARF sections are dropped: the code offsets
// they refer to have moved. A module that already imports
// PreemptModule.PreemptName is returned as it is.
func InsertPreemption(b []byte, budget int32) ([]byte, error) {
	if budget < 1 {
		budget = DefaultPreemptBudget
	}
	budget = min(budget, MaxPreemptBudget)
	m, err := Parse(b)
	if err != nil {
		return nil, err
	}
	for _, imp := range m.Imports {
		if imp.Module == PreemptModule && imp.Name == PreemptName {
			return b, nil
		}
	}
	secs, _ := scan(b) // Parse has checked b
	rw := &preemptRewrite{
		shift:   uint32(m.ImportedFuncs),
		yield:   uint32(m.ImportedFuncs),
		counter: uint32(len(m.Globals)),
		budget:  budget,
		typ:     uint32(len(m.Types)),
	}
	rw.types = m.Types
	var newTypes []FuncType
	typeIndex := func(ft FuncType) uint32 {
		for i, t := range m.Types {
			if equalTypes(t, ft) {
				return uint32(i)
			}
		}
		for i, t := range newTypes {
			if equalTypes(t, ft) {
				return uint32(len(m.Types) + i)
			}
		}
		newTypes = append(newTypes, ft)
		return uint32(len(m.Types) + len(newTypes) - 1)
	}
	rw.typ = typeIndex(FuncType{})
	rw.blockTypes = make([][]byte, len(m.Types))
	for i, t := range m.Types {
		switch len(t.Results) {
		case 0:
			rw.blockTypes[i] = []byte{opEmptyBlock}
		case 1:
			rw.blockTypes[i] = []byte{byte(t.Results[0])}
		default:
			rw.blockTypes[i] = appendU32(nil, typeIndex(FuncType{Results: t.Results}))
		}
	}
	if rw.funcTypes, err = functionTypes(b, secs); err != nil {
		return nil, err
	}

	// Entries to add at the end of the type, import and global sections.
	var typeEntry, importEntry, globalEntry []byte
	for _, t := range newTypes {
		typeEntry = append(typeEntry, 0x60)
		typeEntry = appendU32(typeEntry, uint32(len(t.Params)))
		for _, v := range t.Params {
			typeEntry = append(typeEntry, byte(v))
		}
		typeEntry = appendU32(typeEntry, uint32(len(t.Results)))
		for _, v := range t.Results {
			typeEntry = append(typeEntry, byte(v))
		}
	}
	importEntry = appendName(nil, PreemptModule)
	importEntry = appendName(importEntry, PreemptName)
	importEntry = append(importEntry, byte(KindFunc))
	importEntry = appendU32(importEntry, rw.typ)
	globalEntry = []byte{byte(I32), 1, opI32Const}
	globalEntry = appendS32(globalEntry, budget)
	globalEntry = append(globalEntry, opEnd)
	exportEntry := appendName(nil, PreemptCounterName)
	exportEntry = append(exportEntry, byte(KindGlobal))
	exportEntry = appendU32(exportEntry, rw.counter)

	added := map[byte]newEntries{secImport: {1, importEntry}, secGlobal: {1, globalEntry}, secExport: {1, exportEntry}}
	if len(newTypes) > 0 {
		added[secType] = newEntries{len(newTypes), typeEntry}
	}
	out := make([]byte, 0, len(b)+len(b)/8+64)
	out = append(out, b[:8]...)
	flush := func(before int) {
		for _, id := range []byte{secType, secImport, secGlobal, secExport} {
			if e, ok := added[id]; ok && order(id) < before {
				out = appendSection(out, id, append(appendU32(nil, uint32(e.n)), e.b...))
				delete(added, id)
			}
		}
	}
	for _, s := range secs {
		body := b[s.body:s.end]
		r := &reader{b: body, base: s.body, section: sectionName(s.id)}
		if s.id == secCustom {
			switch {
			case strings.HasPrefix(s.customName, ".debug_"):
				continue
			case s.customName == "name":
				if nb, ok := rw.names(b[s.data:s.end]); ok {
					out = appendSection(out, secCustom, append(appendName(nil, "name"), nb...))
				}
				continue
			}
			out = append(out, b[s.start:s.end]...)
			continue
		}
		flush(order(s.id))
		var nb []byte
		switch s.id {
		case secType, secImport, secGlobal:
			if s.id == secGlobal {
				if body, err = rw.globals(r); err != nil {
					return nil, err
				}
			}
			nb = body
			if e, ok := added[s.id]; ok && err == nil {
				nb, err = appendEntries(body, e)
				delete(added, s.id)
			}
		case secTable:
			nb, err = rw.tables(r)
		case secExport:
			if nb, err = rw.exports(r); err == nil {
				nb, err = appendEntries(nb, added[secExport])
				delete(added, secExport)
			}
		case secStart:
			var idx uint32
			if idx, err = r.u32(); err == nil {
				nb = appendU32(nil, rw.fn(idx))
			}
		case secElement:
			nb, err = rw.elements(r)
		case secCode:
			nb, err = rw.code(r)
		default:
			out = append(out, b[s.start:s.end]...)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = appendSection(out, s.id, nb)
	}
	flush(1 << 30)
	return out, nil
}

// preemptRewrite holds what the rewrite of one module needs.
type preemptRewrite struct {
	shift   uint32 // function indices from here on move up by one
	yield   uint32 // the new import's function index
	counter uint32 // the counter global's index
	typ     uint32 // the index of the type () -> ()
	budget  int32

	types      []FuncType
	funcTypes  []uint32 // the type of each defined function
	blockTypes [][]byte // per type: the block type of its results

	instrs      []instr // reused between bodies
	regions     []int
	regionCalls []bool
	frames      []int
	wrapped     []bool // per open block: a loop wrapped in three more
	loopAt      []int  // the region of each open wrapped loop
}

// fn is the new index of function i.
func (rw *preemptRewrite) fn(i uint32) uint32 {
	if i >= rw.shift {
		return i + 1
	}
	return i
}

// newEntries are n entries to add to a section's vector.
type newEntries struct {
	n int
	b []byte
}

// appendEntries adds e to the vector that body holds.
func appendEntries(body []byte, e newEntries) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n)+uint64(e.n) >= 1<<32 {
		return nil, r.fail("too many entries to add more")
	}
	out := appendU32(make([]byte, 0, len(body)+len(e.b)+5), n+uint32(e.n))
	out = append(out, body[r.pos:]...)
	return append(out, e.b...), nil
}

func equalTypes(a, b FuncType) bool {
	return string(valTypeBytes(a.Params)) == string(valTypeBytes(b.Params)) &&
		string(valTypeBytes(a.Results)) == string(valTypeBytes(b.Results))
}

func valTypeBytes(ts []ValType) []byte {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return b
}

// functionTypes reads the function section: the type index of each
// defined function.
func functionTypes(b []byte, secs []section) ([]uint32, error) {
	for _, s := range secs {
		if s.id != secFunction {
			continue
		}
		r := &reader{b: b[s.body:s.end], base: s.body, section: "function"}
		n, err := r.count(1)
		if err != nil {
			return nil, err
		}
		types := make([]uint32, n)
		for i := range types {
			if types[i], err = r.u32(); err != nil {
				return nil, err
			}
		}
		return types, nil
	}
	return nil, nil
}

// patcher copies src with some spans replaced.
type patcher struct {
	src  []byte
	out  []byte
	last int
}

func (p *patcher) replace(start, end int, with []byte) {
	p.out = append(p.out, p.src[p.last:start]...)
	p.out = append(p.out, with...)
	p.last = end
}

func (p *patcher) finish() []byte {
	return append(p.out, p.src[p.last:]...)
}

// expr reads a constant expression and patches its ref.func indices.
func (rw *preemptRewrite) expr(r *reader, p *patcher) error {
	var err error
	rw.instrs, err = decodeInstrs(r, rw.instrs[:0])
	if err != nil {
		return err
	}
	for _, in := range rw.instrs {
		if refersToFunc(in.op) && in.index >= rw.shift {
			p.replace(in.start+1, in.end, appendU32(nil, in.index+1))
		}
	}
	return nil
}

// globals rewrites the global section's initialisers.
func (rw *preemptRewrite) globals(r *reader) ([]byte, error) {
	p := &patcher{src: r.b}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ {
		if err := r.skipValType(); err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
		if err := rw.expr(r, p); err != nil {
			return nil, err
		}
	}
	return p.finish(), endOfSection(r)
}

// tables rewrites the initialisers of tables that have one.
func (rw *preemptRewrite) tables(r *reader) ([]byte, error) {
	p := &patcher{src: r.b}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ {
		init := r.pos < len(r.b) && r.b[r.pos] == 0x40
		if init {
			r.pos++
			if c, err := r.byte(); err != nil || c != 0 {
				return nil, r.fail("bad table entry")
			}
		}
		if err := r.skipValType(); err != nil {
			return nil, err
		}
		if _, err := r.limits(); err != nil {
			return nil, err
		}
		if init {
			if err := rw.expr(r, p); err != nil {
				return nil, err
			}
		}
	}
	return p.finish(), endOfSection(r)
}

func (rw *preemptRewrite) exports(r *reader) ([]byte, error) {
	p := &patcher{src: r.b}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.name(); err != nil {
			return nil, err
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		start := r.pos
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		if ExternKind(kind) == KindFunc && idx >= rw.shift {
			p.replace(start, r.pos, appendU32(nil, idx+1))
		}
	}
	return p.finish(), endOfSection(r)
}

// elements rewrites the function indices of element segments, in each of
// their eight forms.
func (rw *preemptRewrite) elements(r *reader) ([]byte, error) {
	p := &patcher{src: r.b}
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ {
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		if flags > 7 {
			return nil, r.fail("bad element segment flags")
		}
		if flags&3 == 2 { // active with a table index
			if _, err := r.u32(); err != nil {
				return nil, err
			}
		}
		if flags&1 == 0 { // active: an offset
			if err := rw.expr(r, p); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // an element kind or reference type
			if flags&4 == 0 {
				_, err = r.byte()
			} else {
				err = r.skipValType()
			}
			if err != nil {
				return nil, err
			}
		}
		m, err := r.count(1)
		if err != nil {
			return nil, err
		}
		for j := uint32(0); j < m; j++ {
			if flags&4 != 0 {
				if err := rw.expr(r, p); err != nil {
					return nil, err
				}
				continue
			}
			start := r.pos
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			if idx >= rw.shift {
				p.replace(start, r.pos, appendU32(nil, idx+1))
			}
		}
	}
	return p.finish(), endOfSection(r)
}

// names rewrites the function and local names of a name section; ok is
// false if it cannot be read (it is then dropped: it only names things).
func (rw *preemptRewrite) names(data []byte) (out []byte, ok bool) {
	r := &reader{b: data}
	p := &patcher{src: data}
	for !r.done() {
		subStart := r.pos
		id, err := r.byte()
		if err != nil {
			return nil, false
		}
		size, err := r.u32()
		if err != nil || uint64(size) > uint64(len(data)-r.pos) {
			return nil, false
		}
		end := r.pos + int(size)
		if id != 1 && id != 2 { // only function and local names name functions
			r.pos = end
			continue
		}
		sub := &reader{b: data[:end], pos: r.pos}
		sp := &patcher{src: data[:end], last: r.pos}
		n, err := sub.count(2)
		for i := uint32(0); i < n && err == nil; i++ {
			start := sub.pos
			var idx uint32
			if idx, err = sub.u32(); err != nil {
				break
			}
			if idx >= rw.shift {
				sp.replace(start, sub.pos, appendU32(nil, idx+1))
			}
			if id == 1 {
				_, err = sub.name()
				continue
			}
			var m uint32
			if m, err = sub.count(2); err != nil {
				break
			}
			for j := uint32(0); j < m && err == nil; j++ {
				if _, err = sub.u32(); err == nil {
					_, err = sub.name()
				}
			}
		}
		if err != nil || sub.pos != end {
			return nil, false
		}
		nb := sp.finish()
		with := appendU32([]byte{id}, uint32(len(nb)))
		p.replace(subStart, end, append(with, nb...))
		r.pos = end
	}
	return p.finish(), true
}

func endOfSection(r *reader) error {
	if !r.done() {
		return r.fail("unexpected bytes at end of section")
	}
	return nil
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
