package wasmbin

// GlobalExportPrefix starts the export name ExportMutableGlobals gives each
// mutable global: GlobalExportPrefix + its index in the global index space.
const GlobalExportPrefix = "libra.global."

// GlobalExportName is the name under which ExportMutableGlobals exports the
// global with the given index.
func GlobalExportName(index uint32) string {
	return GlobalExportPrefix + itoa(int(index))
}

// ExportMutableGlobals returns a copy of b whose export section also
// exports every mutable global the module defines (not imported ones) under
// GlobalExportName(index), and the list of those globals with their export
// names. Globals already exported under that name are listed but not
// exported twice, so rewriting a rewritten module changes nothing.
func ExportMutableGlobals(b []byte) (out []byte, globals []Global, err error) {
	m, err := Parse(b)
	if err != nil {
		return nil, nil, err
	}
	exports := m.Exports
	have := make(map[string]bool, len(exports))
	for _, e := range exports {
		have[e.Name] = true
	}
	for _, g := range m.Globals {
		if g.Imported || !g.Mutable {
			continue
		}
		g.Name = GlobalExportName(g.Index)
		globals = append(globals, g)
		if !have[g.Name] {
			exports = append(exports, Export{Name: g.Name, Kind: KindGlobal, Index: g.Index})
		}
	}
	body := appendU32(nil, uint32(len(exports)))
	for _, e := range exports {
		body = appendName(body, e.Name)
		body = append(body, byte(e.Kind))
		body = appendU32(body, e.Index)
	}

	secs, _ := scan(b) // Parse has checked b
	out = make([]byte, 0, len(b)+len(body)-len(m.Exports)*8+16)
	out = append(out, b[:8]...)
	done := false
	for _, s := range secs {
		if !done && s.id != secCustom && order(s.id) >= order(secExport) {
			out = appendSection(out, secExport, body)
			done = true
			if s.id == secExport {
				continue
			}
		}
		out = append(out, b[s.start:s.end]...)
	}
	if !done {
		out = appendSection(out, secExport, body)
	}
	return out, globals, nil
}
