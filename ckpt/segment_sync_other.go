//go:build !linux

package ckpt

import "os"

// datasync makes f's data durable.
func datasync(f *os.File) error { return f.Sync() }

// punch would free n bytes of f at off; without Linux's hole punching
// the space stays used until the segment is compacted or removed.
func punch(*os.File, int64, int64) error { return nil }
