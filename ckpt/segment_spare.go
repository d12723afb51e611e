package ckpt

import "slices"

// Space freed in the current segment is reused rather than punched out:
// freeing blocks makes the file system discard them and update its
// allocation (measured here: 150 ms for 123 MB in one fallocate, and the
// next fdatasync waits for it), while writing into blocks the file already
// has changes no metadata. The freed ranges are the segment's spare list;
// a capture packs its values into them, in order, before it appends. A
// spare range holds only values no committed reference names, so a crash
// while it is rewritten loses nothing; Open rebuilds the list from the
// gaps between the referenced values. Values freed in older segments are
// punched out, and a segment none of whose values is referenced is
// deleted.

// gaps returns the ranges below length that no extent of live (in order)
// covers.
func gaps(live []extent, length int64) []extent {
	var out []extent
	at := int64(0)
	for _, x := range append(live[:len(live):len(live)], extent{length, length}) {
		if at < x.off {
			out = append(out, extent{at, x.off})
		}
		at = max(at, x.end)
	}
	return out
}

// addSpare adds xs to the spare list, merging neighbours. Call with mu
// held.
func (sg *segments) addSpare(xs []extent) {
	if len(xs) == 0 {
		return
	}
	all := append(slices.Clone(sg.spare), xs...)
	sortExtents(all)
	out := all[:1]
	for _, x := range all[1:] {
		if last := &out[len(out)-1]; x.off <= last.end {
			last.end = max(last.end, x.end)
			continue
		}
		out = append(out, x)
	}
	sg.spare = out
}

// place chooses where each of vals goes: packed in order into the first
// spare ranges they fit, the rest appended at end. It returns the offset
// of each and the runs to write. Writer only.
func (sg *segments) place(vals [][]byte) (offs []int64, runs []run) {
	offs = make([]int64, len(vals))
	sg.mu.Lock()
	defer sg.mu.Unlock()
	i := 0
	for s := 0; s < len(sg.spare) && i < len(vals); {
		x := sg.spare[s]
		if int64(len(vals[i])) > x.end-x.off {
			s++
			continue
		}
		at, j := x.off, i
		for ; j < len(vals) && at+int64(len(vals[j])) <= x.end; j++ {
			offs[j] = at
			at += int64(len(vals[j]))
		}
		runs = append(runs, run{x.off, vals[i:j]})
		sg.taken = append(sg.taken, extent{x.off, at})
		if at < x.end {
			sg.spare[s].off = at
		} else {
			sg.spare = slices.Delete(sg.spare, s, s+1)
		}
		i = j
	}
	if i < len(vals) {
		at := sg.end
		runs = append(runs, run{at, vals[i:]})
		for j := i; j < len(vals); j++ {
			offs[j] = at
			at += int64(len(vals[j]))
		}
	}
	return offs, runs
}

// run is values written back to back at off.
type run struct {
	off  int64
	vals [][]byte
}
