package wasmbin

// CustomSection returns the contents (after the name) of the first custom
// section called name. It returns false for a module it cannot read.
func CustomSection(b []byte, name string) ([]byte, bool) {
	secs, err := scan(b)
	if err != nil {
		return nil, false
	}
	for _, s := range secs {
		if s.id == secCustom && s.customName == name {
			return b[s.data:s.end], true
		}
	}
	return nil, false
}

// SetCustomSection returns a copy of b where the custom section called name
// holds data: the first section of that name is replaced in place and any
// later ones are dropped; without one, it is appended at the end. If b cannot
// be read as a module, the section is appended to a copy of it unchanged.
func SetCustomSection(b []byte, name string, data []byte) []byte {
	body := appendName(nil, name)
	body = append(body, data...)
	out := make([]byte, 0, len(b)+len(body)+10)
	secs, err := scan(b)
	if err != nil {
		return appendSection(append(out, b...), secCustom, body)
	}
	out = append(out, b[:8]...)
	done := false
	for _, s := range secs {
		if s.id == secCustom && s.customName == name {
			if !done {
				out = appendSection(out, secCustom, body)
				done = true
			}
			continue
		}
		out = append(out, b[s.start:s.end]...)
	}
	if !done {
		out = appendSection(out, secCustom, body)
	}
	return out
}
