package wasmbin

// code rewrites the code section: each body gets its checks and its new
// function indices.
func (rw *preemptRewrite) code(r *reader) ([]byte, error) {
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	if int(n) != len(rw.funcTypes) {
		return nil, r.fail("function and code sections differ in length")
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
		if body, err = rw.body(br, body[:0], rw.funcTypes[i]); err != nil {
			return nil, err
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, endOfSection(r)
}

// body rewrites one function body of type typ (r holds it from r.pos to
// its end) into out.
//
// A function whose loops include one without calls keeps the counter in
// a local of its own: its loop checks then cost no memory access. The
// local is loaded from the counter global at entry and stored back around
// calls (so that a callee spends from the same count) and on the way out:
// the body goes in a block of the function's results, so that branches to
// the function's end pass the store too. Other functions (and most of Go's,
// whose loops go through one loop at the function's head) spend from the
// global directly, which costs nothing around their calls.
func (rw *preemptRewrite) body(r *reader, out []byte, typ uint32) ([]byte, error) {
	start := r.pos
	nlocals, err := decodeLocals(r)
	if err != nil {
		return nil, err
	}
	code := r.pos
	if rw.instrs, err = decodeInstrs(r, rw.instrs[:0]); err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail("unexpected bytes after the end of a function body")
	}
	if int(typ) >= len(rw.types) {
		return nil, r.fail("function type index out of range")
	}
	calls, leafLoop := rw.weigh()
	local := -1
	nparams := uint64(len(rw.types[typ].Params))
	if leafLoop && nparams+nlocals < 1<<31 {
		local = int(nparams + nlocals)
	}
	wrap := !rw.labelsElsewhere()
	last := len(rw.instrs) - 1
	if local < 0 {
		out = append(out, r.b[start:code]...)
	} else {
		// The locals, and one more i32; the counter loaded; the block
		// that every way out of the function passes through.
		lr := &reader{b: r.b, pos: start}
		n, _ := lr.u32()
		out = appendU32(out, n+1)
		out = append(out, r.b[lr.pos:code]...)
		out = append(out, 1, byte(I32))
		out = rw.appendLoad(out, local)
		out = append(out, opBlock)
		out = append(out, rw.blockTypes[typ]...)
	}
	if calls && rw.instrs[0].op != opLoop {
		out = rw.appendCheck(out, rw.regions[0], local)
	}
	rw.wrapped = append(rw.wrapped[:0], false)
	for i, in := range rw.instrs[:last] {
		if local >= 0 && (isCall(in.op) || isReturn(in.op)) {
			out = rw.appendStore(out, local)
		}
		switch in.op {
		case opLoop:
			bt := r.b[in.start+1 : in.end]
			if wrap && rw.noParams(bt) {
				out = append(out, opBlock)
				out = append(out, bt...)
				out = append(out, opLoop, opEmptyBlock, opBlock, opEmptyBlock)
				out = append(out, r.b[in.start:in.end]...)
				out = rw.appendSpend(out, rw.regions[i+1], local)
				out = append(out, opBrIf, 1) // to the block that calls the import
				rw.wrapped = append(rw.wrapped, true)
				rw.loopAt = append(rw.loopAt, i+1)
				continue
			}
			out = append(out, r.b[in.start:in.end]...)
			out = rw.appendCheck(out, rw.regions[i+1], local)
			rw.wrapped = append(rw.wrapped, false)
			continue
		case opBlock, opIf, opTry, opTryTable:
			rw.wrapped = append(rw.wrapped, false)
		case opEnd, opDelegate:
			top := rw.wrapped[len(rw.wrapped)-1]
			if len(rw.wrapped) > 1 {
				rw.wrapped = rw.wrapped[:len(rw.wrapped)-1]
			}
			out = append(out, r.b[in.start:in.end]...)
			if top {
				w := weight(rw.regions[rw.loopAt[len(rw.loopAt)-1]])
				rw.loopAt = rw.loopAt[:len(rw.loopAt)-1]
				// The loop has ended: leave with its results. Its check
				// came here: call the import, and enter the loop again.
				// The count starts again with the loop's weight on top,
				// which its check spends again.
				out = append(out, opBr, 2, opEnd, opCall)
				out = appendU32(out, rw.yield)
				out = append(out, opI32Const)
				out = appendS32(out, rw.budget+int32(w))
				out = rw.appendSet(out, local)
				// The loop above never ends but the validator does not
				// know: unreachable gives the outer block its results.
				out = append(out, opBr, 0, opEnd, opUnreachable, opEnd)
			}
			continue
		case opBr, opBrIf, opBrTable:
			if wrap {
				out = rw.appendBranch(out, r.b, in)
				continue
			}
		}
		out = rw.appendInstr(out, r.b, in)
		if local >= 0 && isCall(in.op) && !isReturn(in.op) {
			out = rw.appendLoad(out, local)
		}
	}
	if local >= 0 {
		out = append(out, opEnd)
		out = rw.appendStore(out, local)
	}
	return append(out, opEnd), nil
}

// labelsElsewhere reports whether the function has instructions other
// than br, br_if and br_table that name labels (exception handling,
// br_on_null): its loops then keep the import's call inside them, since
// only those three have their labels renumbered.
func (rw *preemptRewrite) labelsElsewhere() bool {
	for _, in := range rw.instrs {
		switch in.op {
		case opTry, 0x07, 0x09, opDelegate, 0x19, opTryTable, 0xd5, 0xd6:
			return true
		}
	}
	return false
}

// noParams reports whether block type bt takes no parameters.
func (rw *preemptRewrite) noParams(bt []byte) bool {
	if len(bt) == 1 && bt[0]&0x40 != 0 {
		return true // empty, or one value type
	}
	r := &reader{b: bt}
	idx, err := r.u32()
	return err == nil && r.done() && int(idx) < len(rw.types) && len(rw.types[idx].Params) == 0
}

// appendBranch appends branch in (from body b) with its labels moved past
// the blocks that wrap the loops it leaves: three for each.
func (rw *preemptRewrite) appendBranch(out, b []byte, in instr) []byte {
	r := &reader{b: b[:in.end], pos: in.start + 1}
	out = append(out, byte(in.op))
	n := uint32(1)
	if in.op == opBrTable {
		n, _ = r.u32()
		out = appendU32(out, n)
		n++
	}
	for ; n > 0; n-- {
		k, _ := r.u32() // decoded before
		out = appendU32(out, rw.label(k))
	}
	return out
}

// label is the new depth of branch label k.
func (rw *preemptRewrite) label(k uint32) uint32 {
	depth := len(rw.wrapped)
	if int64(k) >= int64(depth) {
		return k // not a label of this function: validation refuses it
	}
	add := uint32(0)
	for _, w := range rw.wrapped[depth-int(k):] {
		if w {
			add += 3
		}
	}
	return k + add
}

// appendInstr appends in (from body b) with its new function index.
func (rw *preemptRewrite) appendInstr(out, b []byte, in instr) []byte {
	if refersToFunc(in.op) && in.index >= rw.shift {
		out = append(out, byte(in.op))
		return appendU32(out, in.index+1)
	}
	return append(out, b[in.start:in.end]...)
}

// weigh counts the instructions of each loop's body that are not in a
// nested loop, and of the function outside its loops: regions[0] is the
// function's count, regions[i+1] that of the loop that instrs[i] opens.
// It reports whether the function calls others, and whether one of its
// loops does not.
func (rw *preemptRewrite) weigh() (calls, leafLoop bool) {
	n := len(rw.instrs) + 1
	if cap(rw.regions) < n {
		rw.regions, rw.regionCalls = make([]int, n), make([]bool, n)
	} else {
		rw.regions, rw.regionCalls = rw.regions[:n], rw.regionCalls[:n]
		clear(rw.regions)
		clear(rw.regionCalls)
	}
	rw.frames = append(rw.frames[:0], 0) // the region of each open block
	for i, in := range rw.instrs {
		cur := rw.frames[len(rw.frames)-1]
		rw.regions[cur]++
		if isCall(in.op) {
			calls = true
			rw.regionCalls[cur] = true
		}
		switch in.op {
		case opLoop:
			rw.frames = append(rw.frames, i+1)
		case opBlock, opIf, opTry, opTryTable:
			rw.frames = append(rw.frames, cur)
		case opEnd, opDelegate:
			if len(rw.frames) == 1 {
				continue // the function's end
			}
			if cur != rw.frames[len(rw.frames)-2] && !rw.regionCalls[cur] {
				leafLoop = true // a loop ends that made no call
			}
			rw.frames = rw.frames[:len(rw.frames)-1]
		}
	}
	return calls, leafLoop
}

// appendCheck appends the check that spends weight from the counter (the
// global, or local if it is not negative) and calls the import once it
// has run out:
//
//	global.get $counter; i32.const weight; i32.sub; global.set $counter
//	global.get $counter; i32.const 1; i32.lt_s
//	if; call $preempt; i32.const budget; global.set $counter; end
//
// or, with a local, local.tee instead of the global.set and global.get.
// It uses only its own operands, so it fits anywhere an instruction does.
func (rw *preemptRewrite) appendCheck(out []byte, w, local int) []byte {
	out = rw.appendSpend(out, w, local)
	out = append(out, opIf, opEmptyBlock, opCall)
	out = appendU32(out, rw.yield)
	out = append(out, opI32Const)
	out = appendS32(out, rw.budget)
	out = rw.appendSet(out, local)
	return append(out, opEnd)
}

// appendSpend appends the first part of a check: it spends weight and
// leaves whether the counter has run out.
func (rw *preemptRewrite) appendSpend(out []byte, w, local int) []byte {
	out = rw.appendGet(out, local)
	out = append(out, opI32Const)
	out = appendS32(out, int32(weight(w)))
	out = append(out, opI32Sub)
	if local < 0 {
		out = append(out, opGlobalSet)
		out = appendU32(out, rw.counter)
		out = rw.appendGet(out, local)
	} else {
		out = append(out, opLocalTee)
		out = appendU32(out, uint32(local))
	}
	return append(out, opI32Const, 1, opI32LtS)
}

// weight is what a check spends for n instructions.
func weight(n int) int { return max(1, min(n, maxPreemptWeight)) }

// appendLoad copies the counter global into local; appendStore back.
func (rw *preemptRewrite) appendLoad(out []byte, local int) []byte {
	out = rw.appendGet(out, -1)
	return rw.appendSet(out, local)
}

func (rw *preemptRewrite) appendStore(out []byte, local int) []byte {
	out = rw.appendGet(out, local)
	return rw.appendSet(out, -1)
}

func (rw *preemptRewrite) appendGet(out []byte, local int) []byte {
	if local < 0 {
		return appendU32(append(out, opGlobalGet), rw.counter)
	}
	return appendU32(append(out, opLocalGet), uint32(local))
}

func (rw *preemptRewrite) appendSet(out []byte, local int) []byte {
	if local < 0 {
		return appendU32(append(out, opGlobalSet), rw.counter)
	}
	return appendU32(append(out, opLocalSet), uint32(local))
}
