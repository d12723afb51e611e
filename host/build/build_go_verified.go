package build

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// VerifiedGo lists the Go releases whose runtime layout native capture was
// checked against: the offsets of runtime.g and runtime.m fields and the
// stackPreempt value that the host's poker writes into a running guest
// (host's TestGoRuntimeLayout checks them for the toolchain at hand). A Go
// module built with another release could be captured wrongly, so Build
// refuses it (Info.Go records the version a module was built with).
var VerifiedGo = []string{"go1.26"}

var goReleaseRE = regexp.MustCompile(`^go1\.\d+`)

// GoRelease returns the release (go1.N) of a Go version as `go env
// GOVERSION` prints it (go1.N.P, go1.NrcK, go1.N.P-X:...), "" for a
// development toolchain.
func GoRelease(goVersion string) string {
	return goReleaseRE.FindString(goVersion)
}

// CheckGoVerified returns an ErrGoNotVerified error if goVersion is not of
// a release in VerifiedGo.
func CheckGoVerified(goVersion string) error {
	if rel := GoRelease(goVersion); rel != "" && slices.Contains(VerifiedGo, rel) {
		return nil
	}
	return &GoVersionError{Version: goVersion}
}

// GoVersionError reports a Go version native capture was not verified for.
type GoVersionError struct{ Version string }

func (e *GoVersionError) Error() string {
	v := GoRelease(e.Version)
	if v == "" {
		v = e.Version
	}
	newest := VerifiedGo[len(VerifiedGo)-1]
	return fmt.Sprintf("build: Go %s is not verified for native capture; supported: %s (use one, e.g. GOTOOLCHAIN=%s.0)",
		v, strings.Join(VerifiedGo, ", "), newest)
}

// Is matches ErrGoNotVerified.
func (e *GoVersionError) Is(target error) bool { return target == ErrGoNotVerified }
