//go:build wasip1

package libra

//go:wasmimport libra rank
func hostRank() int32

//go:wasmimport libra size
func hostSize() int32

//go:wasmimport libra pending
func hostPending() int32

//go:wasmimport libra yield
func hostYield()

//go:wasmimport libra checkpoint
func hostCheckpoint()

func rank() int32 { return hostRank() }
func size() int32 { return hostSize() }
func yield()      { hostYield() }
