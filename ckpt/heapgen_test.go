package ckpt

import (
	"encoding/binary"
	"math/rand/v2"
)

// genGoHeap fills a synthetic memory image laid out like the linear memory
// of a Go wasm guest. It is generated, not taken from a real program: no
// guest is built or run. The shape follows Go's allocator:
//
//   - 8 KiB pages grouped into spans, each span holding objects of one
//     size class and one type; a type is a fixed layout of 8-byte words:
//     pointers, small integers, zero words, 64-bit hashes or floats, and
//     string headers (pointer, small length);
//   - pointers are 8-byte words holding 8-aligned addresses inside the
//     memory itself (wasm addresses are 32-bit, so their upper half is
//     zero), mostly near the object, sometimes anywhere;
//   - a fraction of the objects of a span are free (zero);
//   - some spans hold byte data: short text, or random bytes (compressed
//     or encrypted payloads);
//   - goroutine stacks: small integers and pointers into the stack;
//   - about a quarter of the memory is never touched (zero), in runs of
//     whole 64 KiB regions, as an arena that was reserved but not used.
func genGoHeap(size int, seed uint64) []byte {
	mem := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	types := heapTypes(r)
	const page = 8 << 10
	const region = 64 << 10
	for off := 0; off < size; off += region {
		end := min(off+region, size)
		if r.IntN(4) == 0 { // untouched arena
			continue
		}
		for p := off; p < end; {
			n := page * (1 + r.IntN(4)) // span of 1-4 pages
			span := mem[p:min(p+n, end)]
			switch x := r.IntN(100); {
			case x < 70:
				fillObjects(span, p, size, types[r.IntN(len(types))], r)
			case x < 80:
				fillText(span, r)
			case x < 85:
				fillRandom(span, r)
			case x < 93:
				fillStack(span, p, size, r)
			default: // free span
			}
			p += len(span)
		}
	}
	return mem
}

type wordKind uint8

const (
	wPtr wordKind = iota
	wInt
	wZero
	wHash
	wStrPtr // followed by its length word
)

type heapType struct {
	words []wordKind
	size  int // bytes, rounded up to a size class
}

var sizeClasses = []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512}

func heapTypes(r *rand.Rand) []heapType {
	out := make([]heapType, 48)
	for i := range out {
		n := 1 + r.IntN(40)
		if r.IntN(3) == 0 {
			n = 1 + r.IntN(6) // small objects are the most common
		}
		ws := make([]wordKind, 0, n)
		for len(ws) < n {
			switch x := r.IntN(10); {
			case x < 4:
				ws = append(ws, wPtr)
			case x < 6:
				ws = append(ws, wInt)
			case x < 8:
				ws = append(ws, wZero)
			case x < 9 && len(ws)+2 <= n:
				ws = append(ws, wStrPtr, wInt)
			default:
				ws = append(ws, wHash)
			}
		}
		size := 8 * n
		for _, c := range sizeClasses {
			if c >= size {
				size = c
				break
			}
		}
		out[i] = heapType{words: ws, size: size}
	}
	return out
}

// heapPtr returns an 8-aligned address in [0, size), near base most of
// the time.
func heapPtr(base, size int, r *rand.Rand) uint64 {
	if r.IntN(4) == 0 {
		return uint64(r.IntN(size)) &^ 7
	}
	a := base + r.IntN(1<<20) - 1<<19
	return uint64(min(max(a, 0), size-8)) &^ 7
}

func fillObjects(span []byte, base, size int, t heapType, r *rand.Rand) {
	for o := 0; o+t.size <= len(span); o += t.size {
		if r.IntN(5) == 0 {
			continue // free slot
		}
		obj := span[o : o+t.size]
		for i, k := range t.words {
			var w uint64
			switch k {
			case wPtr, wStrPtr:
				if r.IntN(8) != 0 { // nil pointers are common
					w = heapPtr(base+o, size, r)
				}
			case wInt:
				w = uint64(r.IntN(256))
				if r.IntN(4) == 0 {
					w = uint64(r.IntN(100000))
				}
			case wHash:
				w = r.Uint64()
			}
			binary.LittleEndian.PutUint64(obj[8*i:], w)
		}
	}
}

func fillText(span []byte, r *rand.Rand) {
	for i := 0; i < len(span); {
		n := copy(span[i:], words[r.IntN(len(words))])
		i += n
		if r.IntN(6) == 0 && i < len(span) { // string data ends at odd places
			i += min(r.IntN(24), len(span)-i)
		}
	}
}

func fillStack(span []byte, base, size int, r *rand.Rand) {
	used := len(span) - r.IntN(len(span)/2) // the top of the stack is unused
	for i := len(span) - 8; i >= len(span)-used && i >= 0; i -= 8 {
		var w uint64
		switch r.IntN(5) {
		case 0, 1:
			w = uint64(r.IntN(64))
		case 2:
			w = uint64(base+i+8*r.IntN(64)) &^ 7 // into the stack
		case 3:
			w = heapPtr(base, size, r)
		}
		binary.LittleEndian.PutUint64(span[i:], w)
	}
}
