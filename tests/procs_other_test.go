//go:build !linux

package tests

import "os/exec"

// dieWithTest: only Linux can tie a child's life to its parent's.
func dieWithTest(*exec.Cmd) {}
