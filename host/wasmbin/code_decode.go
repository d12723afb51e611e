package wasmbin

// instr is one instruction of a function body or constant expression, as
// decodeInstrs finds it: its opcode and where its bytes (immediates
// included) lie. A body is re-encoded by copying these spans, so decoding
// and encoding are exact by construction; what the decoder must get right
// is where each instruction ends.
type instr struct {
	op         uint32 // opcode; a prefixed one is prefix<<16 | sub-opcode
	start, end int    // offsets of its bytes in the decoded span
	index      uint32 // the function index of call, return_call and ref.func
}

// Opcodes the rewrites look at.
const (
	opUnreachable        = 0x00
	opBlock              = 0x02
	opLoop               = 0x03
	opIf                 = 0x04
	opEmptyBlock         = 0x40 // the block type of a block without results
	opTry                = 0x06 // legacy exception handling
	opEnd                = 0x0b
	opBr                 = 0x0c
	opBrIf               = 0x0d
	opBrTable            = 0x0e
	opCall               = 0x10
	opCallIndirect       = 0x11
	opReturnCall         = 0x12
	opReturnCallIndirect = 0x13
	opCallRef            = 0x14
	opReturnCallRef      = 0x15
	opReturn             = 0x0f
	opDelegate           = 0x18 // ends a legacy try
	opTryTable           = 0x1f
	opLocalGet           = 0x20
	opLocalSet           = 0x21
	opLocalTee           = 0x22
	opGlobalGet          = 0x23
	opGlobalSet          = 0x24
	opI32Const           = 0x41
	opI32LtS             = 0x48
	opI32Sub             = 0x6b
	opRefFunc            = 0xd2
	prefixMisc           = 0xfc
	prefixSIMD           = 0xfd
	prefixAtomic         = 0xfe
)

// refersToFunc reports whether op's index immediate is a function index.
func refersToFunc(op uint32) bool {
	return op == opCall || op == opReturnCall || op == opRefFunc
}

// isReturn reports whether op leaves the function (other than by its end).
func isReturn(op uint32) bool {
	switch op {
	case opReturn, opReturnCall, opReturnCallIndirect, opReturnCallRef:
		return true
	}
	return false
}

// isCall reports whether op calls a function.
func isCall(op uint32) bool {
	switch op {
	case opCall, opCallIndirect, opReturnCall, opReturnCallIndirect, opCallRef, opReturnCallRef:
		return true
	}
	return false
}

// decodeLocals reads a function body's local declarations and returns how
// many locals they declare.
func decodeLocals(r *reader) (uint64, error) {
	n, err := r.count(2)
	if err != nil {
		return 0, err
	}
	var total uint64
	for i := uint32(0); i < n; i++ {
		c, err := r.u32()
		if err != nil {
			return 0, err
		}
		total += uint64(c)
		if err := r.skipValType(); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// decodeInstrs reads instructions up to and including the end that closes
// the expression (depth 0), appending them to into. Offsets are r.pos
// values.
func decodeInstrs(r *reader, into []instr) ([]instr, error) {
	depth := 0
	for {
		in, err := r.instr()
		if err != nil {
			return into, err
		}
		into = append(into, in)
		switch in.op {
		case opBlock, opLoop, opIf, opTry, opTryTable:
			depth++
		case opEnd, opDelegate:
			if depth == 0 {
				if in.op == opDelegate {
					r.pos = in.start
					return into, r.fail("delegate outside a try block")
				}
				return into, nil
			}
			depth--
		}
	}
}

// instr decodes one instruction.
func (r *reader) instr() (instr, error) {
	in := instr{start: r.pos}
	c, err := r.byte()
	if err != nil {
		return in, err
	}
	in.op = uint32(c)
	switch {
	case c == prefixMisc || c == prefixSIMD || c == prefixAtomic:
		sub, err := r.u32()
		if err != nil {
			return in, err
		}
		if sub > 0xffff {
			return in, r.fail("unknown instruction")
		}
		in.op = uint32(c)<<16 | sub
		switch c {
		case prefixMisc:
			err = r.miscImmediates(sub)
		case prefixSIMD:
			err = r.simdImmediates(sub)
		default:
			err = r.atomicImmediates(sub)
		}
		if err != nil {
			return in, err
		}
	default:
		if err := r.immediates(&in); err != nil {
			return in, err
		}
	}
	in.end = r.pos
	return in, nil
}

// immediates reads the immediates of a one-byte opcode.
func (r *reader) immediates(in *instr) error {
	var err error
	switch op := in.op; {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0a, op == opEnd, op == 0x0f,
		op == 0x19, op == 0x1a, op == 0x1b, op == 0xd1, op == 0xd3, op == 0xd4,
		op >= 0x45 && op <= 0xc4:
		// no immediates
	case op == opBlock, op == opLoop, op == opIf, op == opTry:
		err = r.skipBlockType()
	case op == opTryTable:
		if err = r.skipBlockType(); err != nil {
			return err
		}
		var n uint32
		if n, err = r.count(2); err != nil {
			return err
		}
		for i := uint32(0); i < n && err == nil; i++ {
			var kind byte
			if kind, err = r.byte(); err != nil {
				return err
			}
			switch kind {
			case 0, 1: // catch, catch_ref: tag and label
				if _, err = r.u32(); err == nil {
					_, err = r.u32()
				}
			case 2, 3: // catch_all, catch_all_ref: label
				_, err = r.u32()
			default:
				r.pos--
				return r.fail("unknown catch clause")
			}
		}
	case op == 0x07, op == 0x08, op == 0x09, op == 0x0c, op == 0x0d, op == opCallRef,
		op == opReturnCallRef, op == opDelegate, op >= 0x20 && op <= 0x26, op == 0xd5, op == 0xd6,
		op == 0x3f, op == 0x40:
		// one index: tag, label, type, local, global, table or memory
		_, err = r.u32()
	case op == opCall, op == opReturnCall, op == opRefFunc:
		in.index, err = r.u32()
	case op == opCallIndirect, op == opReturnCallIndirect:
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case op == 0x0e: // br_table
		var n uint32
		if n, err = r.count(1); err != nil {
			return err
		}
		for i := uint32(0); i <= n && err == nil; i++ {
			_, err = r.u32()
		}
	case op == 0x1c: // select with types
		var n uint32
		if n, err = r.count(1); err != nil {
			return err
		}
		for i := uint32(0); i < n && err == nil; i++ {
			err = r.skipValType()
		}
	case op >= 0x28 && op <= 0x3e:
		err = r.skipMemArg()
	case op == opI32Const:
		err = r.skipSLEB(32)
	case op == 0x42:
		err = r.skipSLEB(64)
	case op == 0x43:
		_, err = r.bytes(4)
	case op == 0x44:
		_, err = r.bytes(8)
	case op == 0xd0: // ref.null
		err = r.skipSLEB(33)
	default:
		r.pos = in.start
		return r.fail("unknown instruction " + hexByte(byte(op)))
	}
	return err
}

func (r *reader) miscImmediates(sub uint32) error {
	var n int // index immediates
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		n = 2
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
		n = 1
	default:
		return r.fail("unknown instruction 0xfc " + itoa(int(sub)))
	}
	for ; n > 0; n-- {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) simdImmediates(sub uint32) error {
	var err error
	switch {
	case sub <= 0x0b, sub == 0x5c, sub == 0x5d: // loads, v128.store, load zero
		err = r.skipMemArg()
	case sub == 0x0c, sub == 0x0d: // v128.const, i8x16.shuffle
		_, err = r.bytes(16)
	case sub >= 0x15 && sub <= 0x22: // extract_lane, replace_lane
		_, err = r.byte()
	case sub >= 0x54 && sub <= 0x5b: // load_lane, store_lane
		if err = r.skipMemArg(); err == nil {
			_, err = r.byte()
		}
	case sub <= 0x113: // everything else takes no immediate (relaxed SIMD included)
	default:
		return r.fail("unknown instruction 0xfd " + itoa(int(sub)))
	}
	return err
}

func (r *reader) atomicImmediates(sub uint32) error {
	switch {
	case sub == 0x03: // atomic.fence
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c != 0 {
			r.pos--
			return r.fail("atomic.fence takes a zero byte")
		}
		return nil
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e:
		return r.skipMemArg()
	}
	return r.fail("unknown instruction 0xfe " + itoa(int(sub)))
}

// skipMemArg skips a memory argument: alignment, a memory index if the
// alignment's bit 6 says so (multi-memory), and an offset (64 bits wide
// for memory64).
func (r *reader) skipMemArg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	_, err = r.u64()
	return err
}

// skipBlockType skips a block type: empty (0x40), a value type or a type
// index (a signed 33-bit LEB128).
func (r *reader) skipBlockType() error {
	start := r.pos
	if err := r.skipSLEB(33); err != nil {
		return err
	}
	if r.pos == start+1 && (r.b[start] == 0x63 || r.b[start] == 0x64) {
		return r.skipSLEB(33) // (ref null? heaptype)
	}
	return nil
}

// skipValType skips a value type: one byte, or (ref null? heaptype).
func (r *reader) skipValType() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	if c == 0x63 || c == 0x64 {
		return r.skipSLEB(33)
	}
	if c&0x80 != 0 {
		r.pos--
		return r.fail("unsupported value type " + ValType(c).String())
	}
	return nil
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return "0x" + string([]byte{digits[c>>4], digits[c&15]})
}
