// Package memalloc backs a guest's linear memory with one mmap reservation
// of its whole maximum size, so that the memory never moves: a host
// goroutine may read guest memory while the guest runs and grows it, and
// growing costs nothing but a new slice length.
//
// Use it with experimental.WithMemoryAllocator:
//
//	ctx = experimental.WithMemoryAllocator(ctx, memalloc.Allocator{})
package memalloc
