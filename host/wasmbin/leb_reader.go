package wasmbin

import (
	"unicode/utf8"
)

// reader decodes one span of a module. Positions it reports are absolute
// offsets in the module (base + pos).
type reader struct {
	b       []byte
	pos     int
	base    int
	section string
}

func (r *reader) fail(msg string) error {
	return &FormatError{Section: r.section, Offset: r.base + r.pos, Msg: msg}
}

func (r *reader) done() bool { return r.pos >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, r.fail("unexpected end")
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)-r.pos) {
		return nil, r.fail("unexpected end")
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// u64 reads an unsigned LEB128 of at most 64 bits.
func (r *reader) u64() (uint64, error) { return r.uleb(64) }

func (r *reader) uleb(bits uint) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift >= bits || (bits-shift < 7 && uint64(c&0x7f)>>(bits-shift) != 0) {
			return 0, r.fail("integer too large")
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// skipSLEB skips a signed LEB128 of at most bits bits.
func (r *reader) skipSLEB(bits uint) error {
	for n := uint(0); ; n += 7 {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if n >= bits {
			return r.fail("integer too large")
		}
		if c&0x80 == 0 {
			return nil
		}
	}
}

// count reads a vector length and checks it against the bytes left, given
// that each element takes at least min bytes.
func (r *reader) count(min int) (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(min) > uint64(len(r.b)-r.pos) {
		return 0, r.fail("vector length exceeds section")
	}
	return n, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	s, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", r.fail("name is not UTF-8")
	}
	return string(s), nil
}

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
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

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
