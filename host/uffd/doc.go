// Package uffd holds the kernel's userfaultfd interface
// (linux/userfaultfd.h) that librahost uses in two places: write tracking
// and copy-on-write captures (host/dirty), and lazy restore, which fills a
// guest's memory on its first touch (host/lazy). It holds only the ABI:
// ioctl numbers, flags, argument structs, the fault message and an ioctl
// call; each user keeps its own policy.
package uffd
