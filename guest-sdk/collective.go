package libra

import (
	"encoding/binary"
	"math"
)

// The collectives are built on Send and Recv over a binomial tree rooted
// at the root rank: log2(Size) rounds. Every rank of the job must call the
// same collectives in the same order.

// Barrier returns once every rank has called it.
func Barrier() error {
	if _, err := reduceTag(0, nil, func(a, b []byte) []byte { return nil }, tagBarrier); err != nil {
		return err
	}
	_, err := bcastTag(0, nil, tagBarrier)
	return err
}

// Bcast sends root's data to every rank and returns it on each.
func Bcast(root int, data []byte) ([]byte, error) {
	return bcastTag(root, data, tagBcast)
}

func bcastTag(root int, data []byte, tag int) ([]byte, error) {
	if err := checkRank(root); err != nil {
		return nil, err
	}
	n, me := Size(), Rank()
	rel := (me - root + n) % n
	mask := 1
	for mask < n { // receive from the parent
		if rel&mask != 0 {
			m, err := recv((me-mask+n)%n, tag)
			if err != nil {
				return nil, err
			}
			data = m.Data
			break
		}
		mask <<= 1
	}
	for mask >>= 1; mask > 0; mask >>= 1 { // send to the children
		if rel+mask < n {
			if err := send((me+mask)%n, tag, data); err != nil {
				return nil, err
			}
		}
	}
	return data, nil
}

// Reduce combines every rank's data with combine, which must be
// associative and commutative, and returns the result on root (nil on the
// other ranks).
func Reduce(root int, data []byte, combine func(a, b []byte) []byte) ([]byte, error) {
	return reduceTag(root, data, combine, tagReduce)
}

func reduceTag(root int, data []byte, combine func(a, b []byte) []byte, tag int) ([]byte, error) {
	if err := checkRank(root); err != nil {
		return nil, err
	}
	n, me := Size(), Rank()
	rel := (me - root + n) % n
	for mask := 1; mask < n; mask <<= 1 {
		if rel&mask != 0 { // send to the parent and stop
			return nil, send((me-mask+n)%n, tag, data)
		}
		if rel+mask < n {
			m, err := recv((me+mask)%n, tag)
			if err != nil {
				return nil, err
			}
			data = combine(data, m.Data)
		}
	}
	return data, nil
}

// Allreduce combines every rank's data with combine and returns the
// result on every rank.
func Allreduce(data []byte, combine func(a, b []byte) []byte) ([]byte, error) {
	r, err := reduceTag(0, data, combine, tagAllreduce)
	if err != nil {
		return nil, err
	}
	return bcastTag(0, r, tagAllreduce)
}

// Op combines two float64 values in ReduceFloat64 and AllreduceFloat64.
type Op func(a, b float64) float64

// Common operations.
var (
	Sum  Op = func(a, b float64) float64 { return a + b }
	Prod Op = func(a, b float64) float64 { return a * b }
	Max  Op = math.Max
	Min  Op = math.Min
)

// ReduceFloat64 combines every rank's vector element-wise with op; the
// result is on root.
func ReduceFloat64(root int, v []float64, op Op) ([]float64, error) {
	r, err := Reduce(root, encodeFloats(v), op.combine)
	if err != nil || r == nil {
		return nil, err
	}
	return decodeFloats(r), nil
}

// AllreduceFloat64 is ReduceFloat64 with the result on every rank.
func AllreduceFloat64(v []float64, op Op) ([]float64, error) {
	r, err := Allreduce(encodeFloats(v), op.combine)
	if err != nil {
		return nil, err
	}
	return decodeFloats(r), nil
}

func (op Op) combine(a, b []byte) []byte {
	x, y := decodeFloats(a), decodeFloats(b)
	for i := range x {
		if i < len(y) {
			x[i] = op(x[i], y[i])
		}
	}
	return encodeFloats(x)
}

func encodeFloats(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(f))
	}
	return b
}

func decodeFloats(b []byte) []float64 {
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v
}
