//go:build !wasip1

package libra

import "embed"

// Source holds the SDK's own files (Go sources, go.mod and libra.h).
// librahost embeds it so that `librahost build` can compile a guest with
// nothing installed but Go: it writes these files out and adds them to a
// temporary go.work beside the user's module.
//
//go:embed go.mod *.go libra.h
var Source embed.FS
