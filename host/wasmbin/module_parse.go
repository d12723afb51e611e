package wasmbin

// Parse reads the parts of a module that librahost needs. Function bodies,
// element and data segments are not decoded.
func Parse(b []byte) (*Module, error) {
	secs, err := scan(b)
	if err != nil {
		return nil, err
	}
	m := &Module{}
	for _, s := range secs {
		r := &reader{b: b[s.body:s.end], base: s.body, section: sectionName(s.id)}
		switch s.id {
		case secCustom:
			m.Customs = append(m.Customs, Custom{Name: s.customName, Data: b[s.data:s.end]})
			continue
		case secType:
			err = m.parseTypes(r)
		case secImport:
			err = m.parseImports(r)
		case secFunction:
			var n uint32
			if n, err = r.count(1); err == nil {
				m.Funcs = int(n)
				for i := uint32(0); i < n && err == nil; i++ {
					_, err = r.u32()
				}
			}
		case secMemory:
			err = m.parseMemories(r)
		case secGlobal:
			err = m.parseGlobals(r)
		case secExport:
			err = m.parseExports(r)
		case secStart:
			m.HasStart = true
			_, err = r.u32()
		default:
			continue // table, element, code, data, datacount, tag
		}
		if err == nil && !r.done() {
			err = r.fail("unexpected bytes at end of section")
		}
		if err != nil {
			return nil, err
		}
	}
	for _, e := range m.Exports {
		if e.Kind == KindGlobal && int(e.Index) < len(m.Globals) && m.Globals[e.Index].Name == "" {
			m.Globals[e.Index].Name = e.Name
		}
	}
	return m, nil
}

func (m *Module) parseTypes(r *reader) error {
	n, err := r.count(3)
	if err != nil {
		return err
	}
	m.Types = make([]FuncType, 0, n)
	for i := uint32(0); i < n; i++ {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return r.fail("unsupported type form (only func types are read)")
		}
		var ft FuncType
		if ft.Params, err = r.valTypes(); err != nil {
			return err
		}
		if ft.Results, err = r.valTypes(); err != nil {
			return err
		}
		m.Types = append(m.Types, ft)
	}
	return nil
}

func (r *reader) valTypes() ([]ValType, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	ts := make([]ValType, n)
	for i := range ts {
		if ts[i], err = r.valType(); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func (r *reader) valType() (ValType, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	if t := ValType(c); t.valid() {
		return t, nil
	}
	r.pos--
	return 0, r.fail("unsupported value type " + ValType(c).String())
}

func (r *reader) globalType() (GlobalType, error) {
	t, err := r.valType()
	if err != nil {
		return GlobalType{}, err
	}
	mut, err := r.byte()
	if err != nil {
		return GlobalType{}, err
	}
	if mut > 1 {
		return GlobalType{}, r.fail("bad global mutability")
	}
	return GlobalType{ValType: t, Mutable: mut == 1}, nil
}

func (r *reader) limits() (Limits, error) {
	flags, err := r.byte()
	if err != nil {
		return Limits{}, err
	}
	if flags > 7 {
		return Limits{}, r.fail("bad limits flags")
	}
	l := Limits{HasMax: flags&1 != 0, Shared: flags&2 != 0, Is64: flags&4 != 0}
	read := r.u64
	if !l.Is64 {
		read = func() (uint64, error) { v, err := r.u32(); return uint64(v), err }
	}
	if l.Min, err = read(); err != nil {
		return Limits{}, err
	}
	if l.HasMax {
		if l.Max, err = read(); err != nil {
			return Limits{}, err
		}
	}
	return l, nil
}

func (m *Module) parseImports(r *reader) error {
	n, err := r.count(4)
	if err != nil {
		return err
	}
	m.Imports = make([]Import, 0, n)
	for i := uint32(0); i < n; i++ {
		var imp Import
		if imp.Module, err = r.name(); err != nil {
			return err
		}
		if imp.Name, err = r.name(); err != nil {
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		imp.Kind = ExternKind(kind)
		switch imp.Kind {
		case KindFunc:
			imp.TypeIndex, err = r.u32()
			m.ImportedFuncs++
		case KindTable:
			if imp.RefType, err = r.valType(); err == nil {
				imp.Limits, err = r.limits()
			}
		case KindMemory:
			imp.Limits, err = r.limits()
			m.Memories = append(m.Memories, imp.Limits)
		case KindGlobal:
			imp.Global, err = r.globalType()
			m.Globals = append(m.Globals, Global{Index: uint32(len(m.Globals)),
				ValType: imp.Global.ValType, Mutable: imp.Global.Mutable, Imported: true})
		case KindTag:
			if _, err = r.byte(); err == nil {
				imp.TypeIndex, err = r.u32()
			}
		default:
			r.pos--
			return r.fail("unknown import kind")
		}
		if err != nil {
			return err
		}
		m.Imports = append(m.Imports, imp)
	}
	return nil
}

func (m *Module) parseMemories(r *reader) error {
	n, err := r.count(2)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		l, err := r.limits()
		if err != nil {
			return err
		}
		m.Memories = append(m.Memories, l)
	}
	return nil
}

func (m *Module) parseGlobals(r *reader) error {
	n, err := r.count(3)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		gt, err := r.globalType()
		if err != nil {
			return err
		}
		if err := r.skipConstExpr(); err != nil {
			return err
		}
		m.Globals = append(m.Globals, Global{Index: uint32(len(m.Globals)),
			ValType: gt.ValType, Mutable: gt.Mutable})
	}
	return nil
}

// skipConstExpr skips a constant expression up to and including its end
// opcode: the MVP constants, global.get, the reference instructions and
// the extended-const arithmetic.
func (r *reader) skipConstExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41: // i32.const
			err = r.skipSLEB(32)
		case 0x42: // i64.const
			err = r.skipSLEB(64)
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = r.u32()
		case 0xd0: // ref.null
			_, err = r.valType()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // i32/i64 add, sub, mul
		case 0xfd: // v128.const
			var sub uint32
			if sub, err = r.u32(); err == nil {
				if sub != 12 {
					return r.fail("unsupported instruction in constant expression")
				}
				_, err = r.bytes(16)
			}
		default:
			r.pos--
			return r.fail("unsupported instruction in constant expression")
		}
		if err != nil {
			return err
		}
	}
}

func (m *Module) parseExports(r *reader) error {
	n, err := r.count(3)
	if err != nil {
		return err
	}
	m.Exports = make([]Export, 0, n)
	for i := uint32(0); i < n; i++ {
		var e Export
		if e.Name, err = r.name(); err != nil {
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		if kind > byte(KindTag) {
			r.pos--
			return r.fail("unknown export kind")
		}
		e.Kind = ExternKind(kind)
		if e.Index, err = r.u32(); err != nil {
			return err
		}
		m.Exports = append(m.Exports, e)
	}
	return nil
}
