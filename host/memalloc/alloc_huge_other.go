//go:build !linux

package memalloc

// adviseHuge does nothing where transparent huge pages are not known.
func adviseHuge([]byte) {}
