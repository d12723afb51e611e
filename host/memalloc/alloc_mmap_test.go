package memalloc

import (
	"context"
	"errors"
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

const page = 65536

// growModule exports its memory and grow(delta i32) -> i32, which runs
// memory.grow. hasMax selects whether the memory declares a maximum.
func growModule(min, max byte, hasMax bool) []byte {
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	sec := func(id byte, body ...byte) { b = append(append(b, id, byte(len(body))), body...) }
	sec(1, 1, 0x60, 1, 0x7f, 1, 0x7f)
	sec(3, 1, 0)
	if hasMax {
		sec(5, 1, 1, min, max)
	} else {
		sec(5, 1, 0, min)
	}
	sec(7, 2, 4, 'g', 'r', 'o', 'w', 0, 0, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0)
	sec(10, 1, 6, 0, 0x20, 0, 0x40, 0, 0x0b)
	return b
}

func TestAllocatorWazero(t *testing.T) {
	tests := []struct {
		name     string
		alloc    Allocator
		mod      []byte
		maxPages uint32
	}{
		{"declared max", Allocator{}, growModule(1, 100, true), 100},
		{"no max reserves 4 GiB", Allocator{}, growModule(2, 0, false), 65536},
		{"limit", Allocator{Limit: 16 * page}, growModule(1, 0, false), 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := experimental.WithMemoryAllocator(context.Background(), tt.alloc)
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, tt.mod)
			if err != nil {
				t.Fatal(err)
			}
			mem := mod.Memory()
			base, _ := mem.Read(0, 1)
			addr := unsafe.SliceData(base)
			mem.WriteByte(7, 42)

			grow := mod.ExportedFunction("grow")
			start := mem.Size() / page
			for _, delta := range []uint32{1, 3, 0, 5} {
				before := mem.Size() / page
				res, err := grow.Call(ctx, uint64(delta))
				if err != nil {
					t.Fatal(err)
				}
				if uint32(res[0]) != before {
					t.Errorf("memory.grow returned %d, want %d", int32(res[0]), before)
				}
			}
			if _, ok := mem.Grow(1); !ok {
				t.Fatal("host grow failed")
			}
			pages := mem.Size() / page
			if pages != start+10 {
				t.Errorf("pages %d, want %d", pages, start+10)
			}
			all, ok := mem.Read(0, mem.Size())
			if !ok || unsafe.SliceData(all) != addr {
				t.Fatalf("memory moved")
			}
			if all[7] != 42 || all[len(all)-1] != 0 {
				t.Errorf("contents lost or new pages not zero")
			}
			all[len(all)-1] = 1 // new pages are writable

			// Growing past the reservation fails cleanly.
			res, err := grow.Call(ctx, uint64(tt.maxPages-pages+1))
			if err != nil || int32(res[0]) != -1 {
				t.Errorf("grow past max: %d %v", int32(res[0]), err)
			}
			if _, ok := mem.Grow(tt.maxPages - pages); !ok {
				t.Errorf("grow to max %d failed", tt.maxPages)
			}
			if all, _ := mem.Read(0, 1); unsafe.SliceData(all) != addr {
				t.Error("memory moved at max")
			}
		})
	}
}

func TestAllocatorDirect(t *testing.T) {
	a := Allocator{}
	m := a.Allocate(page, 4*page)
	b := m.Reallocate(page)
	if len(b) != page {
		t.Fatalf("len %d", len(b))
	}
	b2 := m.Reallocate(4 * page)
	if len(b2) != 4*page || &b2[0] != &b[0] {
		t.Fatal("grow moved or wrong size")
	}
	if m.Reallocate(4*page+1) != nil {
		t.Error("grew past the reservation")
	}
	m.Free()
	m.Free()
	if m.Reallocate(1) != nil {
		t.Error("reallocated after free")
	}

	z := a.Allocate(0, 0)
	if b := z.Reallocate(0); b == nil || len(b) != 0 {
		t.Error("zero-size memory")
	}
	z.Free()
}

func TestHeapFallback(t *testing.T) {
	hm := &heapMemory{buf: make([]byte, 0, 10), max: 100}
	if b := hm.Reallocate(50); len(b) != 50 || cap(b) > 100 {
		t.Errorf("heap grow: len %d cap %d", len(b), cap(b))
	}
	if hm.Reallocate(101) != nil {
		t.Error("heap grew past max")
	}
	e := &ReserveError{Bytes: 5, Err: errors.ErrUnsupported}
	if e.Error() != "memalloc: reserving 5 bytes: unsupported operation" || !errors.Is(e, errors.ErrUnsupported) {
		t.Errorf("fallback error %v", e)
	}
}
