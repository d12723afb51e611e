package wasi

// span is the byte range [off, end) of a file.
type span struct{ off, end int64 }

// spanSet is a set of byte ranges, kept sorted, disjoint and coalesced.
type spanSet []span

// add inserts [off, end).
func (s *spanSet) add(off, end int64) {
	if off >= end {
		return
	}
	v := *s
	// i: first span that ends at or after off; j: first span that starts
	// after end.
	i := 0
	for i < len(v) && v[i].end < off {
		i++
	}
	j := i
	for j < len(v) && v[j].off <= end {
		off = min(off, v[j].off)
		end = max(end, v[j].end)
		j++
	}
	if i == j {
		v = append(v, span{})
		copy(v[i+1:], v[i:])
		v[i] = span{off, end}
	} else {
		v[i] = span{off, end}
		v = append(v[:i+1], v[j:]...)
	}
	*s = v
}

// missing returns the parts of [off, end) not in s.
func (s spanSet) missing(off, end int64) []span {
	var out []span
	for _, sp := range s {
		if off >= end {
			break
		}
		if sp.end <= off {
			continue
		}
		if sp.off >= end {
			break
		}
		if sp.off > off {
			out = append(out, span{off, sp.off})
		}
		off = max(off, sp.end)
	}
	if off < end {
		out = append(out, span{off, end})
	}
	return out
}

// clip returns the parts of s below limit.
func (s spanSet) clip(limit int64) []span {
	var out []span
	for _, sp := range s {
		if sp.off >= limit {
			break
		}
		out = append(out, span{sp.off, min(sp.end, limit)})
	}
	return out
}
