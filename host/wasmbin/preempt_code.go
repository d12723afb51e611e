package wasmbin

// code rewrites the code section: each body gets its checks and its new
// function indices.
func (rw *preemptRewrite) code(r *reader) ([]byte, error) {
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(r.b)+len(r.b)/4), n)
	var body []byte
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		start := r.pos
		if _, err := r.bytes(size); err != nil {
			return nil, err
		}
		br := &reader{b: r.b[:r.pos], pos: start, base: r.base, section: r.section}
		if body, err = rw.body(br, body[:0]); err != nil {
			return nil, err
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, endOfSection(r)
}

// body rewrites one function body (r holds it from r.pos to its end) into
// out.
func (rw *preemptRewrite) body(r *reader, out []byte) ([]byte, error) {
	start := r.pos
	if err := decodeLocals(r); err != nil {
		return nil, err
	}
	code := r.pos
	var err error
	if rw.instrs, err = decodeInstrs(r, rw.instrs[:0]); err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail("unexpected bytes after the end of a function body")
	}
	calls := rw.weigh()
	out = append(out, r.b[start:code]...)
	if calls && rw.instrs[0].op != opLoop {
		out = rw.appendCheck(out, rw.regions[0])
	}
	for i, in := range rw.instrs {
		if refersToFunc(in.op) && in.index >= rw.shift {
			out = append(out, byte(in.op))
			out = appendU32(out, in.index+1)
		} else {
			out = append(out, r.b[in.start:in.end]...)
		}
		if in.op == opLoop {
			out = rw.appendCheck(out, rw.regions[i+1])
		}
	}
	return out, nil
}

// weigh counts the instructions of each loop's body that are not in a
// nested loop, and of the function outside its loops: regions[0] is the
// function's count, regions[i+1] that of the loop that instrs[i] opens.
// It reports whether the function calls others.
func (rw *preemptRewrite) weigh() (calls bool) {
	if n := len(rw.instrs) + 1; cap(rw.regions) < n {
		rw.regions = make([]int, n)
	} else {
		rw.regions = rw.regions[:n]
		clear(rw.regions)
	}
	rw.frames = append(rw.frames[:0], 0) // region of each open block
	for i, in := range rw.instrs {
		cur := rw.frames[len(rw.frames)-1]
		rw.regions[cur]++
		calls = calls || isCall(in.op)
		switch in.op {
		case opLoop:
			rw.frames = append(rw.frames, i+1)
		case opBlock, opIf, opTry, opTryTable:
			rw.frames = append(rw.frames, cur)
		case opEnd, opDelegate:
			if len(rw.frames) > 1 {
				rw.frames = rw.frames[:len(rw.frames)-1]
			}
		}
	}
	return calls
}

// appendCheck appends the check that spends weight from the counter and
// calls the import once it has run out:
//
//	global.get $counter; i32.const weight; i32.sub; global.set $counter
//	global.get $counter; i32.const 1; i32.lt_s
//	if; call $preempt; i32.const budget; global.set $counter; end
//
// It uses only its own operands, so it fits anywhere an instruction does.
func (rw *preemptRewrite) appendCheck(out []byte, weight int) []byte {
	weight = max(1, min(weight, maxPreemptWeight))
	out = append(out, opGlobalGet)
	out = appendU32(out, rw.counter)
	out = append(out, opI32Const)
	out = appendS32(out, int32(weight))
	out = append(out, opI32Sub, opGlobalSet)
	out = appendU32(out, rw.counter)
	out = append(out, opGlobalGet)
	out = appendU32(out, rw.counter)
	out = append(out, opI32Const, 1, opI32LtS, opIf, 0x40, opCall)
	out = appendU32(out, rw.yield)
	out = append(out, opI32Const)
	out = appendS32(out, rw.budget)
	out = append(out, opGlobalSet)
	out = appendU32(out, rw.counter)
	return append(out, opEnd)
}
