package wasmbin

import "bytes"

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "datacount", "tag"}

func sectionName(id byte) string {
	if int(id) < len(sectionNames) {
		return sectionNames[id]
	}
	return "unknown"
}

// order is the position a known section must keep relative to the others
// (the tag section sits between memory and global, datacount between
// element and code).
func order(id byte) int {
	switch id {
	case secTag:
		return 55
	case secDataCount:
		return 95
	}
	return int(id) * 10
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// section is one section of a module: start is the offset of its id byte,
// body the offsets of its contents.
type section struct {
	id         byte
	start      int
	body, end  int
	customName string
	data       int // start of a custom section's contents, after the name
}

// scan splits a module into its sections, checking the header, that every
// section fits, and that known sections come once each and in order.
func scan(b []byte) ([]section, error) {
	if len(b) < 4 || !bytes.Equal(b[:4], header[:4]) {
		return nil, ErrNotWasm
	}
	if len(b) < 8 {
		return nil, &FormatError{Offset: len(b), Msg: "truncated header"}
	}
	if !bytes.Equal(b[4:8], header[4:]) {
		return nil, &FormatError{Offset: 4, Msg: "unsupported version (not 1)"}
	}
	var secs []section
	last := 0
	r := &reader{b: b, pos: 8}
	for !r.done() {
		start := r.pos
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body := r.pos
		if uint64(size) > uint64(len(b)-body) {
			return nil, &FormatError{Section: sectionName(id), Offset: start,
				Msg: "section size exceeds module"}
		}
		s := section{id: id, start: start, body: body, end: body + int(size)}
		switch {
		case id == secCustom:
			nr := &reader{b: b[body:s.end], base: body, section: "custom"}
			if s.customName, err = nr.name(); err != nil {
				return nil, err
			}
			s.data = body + nr.pos
		case id > secTag:
			return nil, &FormatError{Offset: start, Msg: "unknown section id " + itoa(int(id))}
		default:
			if order(id) <= last {
				return nil, &FormatError{Section: sectionName(id), Offset: start,
					Msg: "section out of order or repeated"}
			}
			last = order(id)
		}
		secs = append(secs, s)
		r.pos = s.end
	}
	return secs, nil
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// appendSection appends a section with the given id and contents.
func appendSection(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = appendU32(b, uint32(len(body)))
	return append(b, body...)
}
