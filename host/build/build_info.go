package build

import (
	"encoding/json"
	"fmt"

	"github.com/librahost/librahost/host/wasmbin"
)

// InfoSection is the custom section Build writes Info into.
const InfoSection = "librahost.build"

// FormatVersion is the Info.Format this package writes and the highest
// it reads.
const FormatVersion = 1

// Kinds of capture a module is built for.
const (
	KindGo       = "go"       // Go reactor, native capture
	KindAsyncify = "asyncify" // instrumented by Binaryen's asyncify pass
)

// Info records how a module was built.
type Info struct {
	Format int    `json:"format"`
	Kind   string `json:"kind"`
	Go     string `json:"go,omitempty"` // go env GOVERSION, for KindGo
	Source string `json:"source"`       // the package or files it was built from
}

// ReadInfo returns the Info of a module built by Build, false if the module
// has none (it was not built by librahost build), and an error if the
// module or its Info cannot be read.
func ReadInfo(wasm []byte) (Info, bool, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return Info{}, false, err
	}
	data, ok := m.Custom(InfoSection)
	if !ok {
		return Info{}, false, nil
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return Info{}, false, fmt.Errorf("build: bad %s section: %v", InfoSection, err)
	}
	if info.Format < 1 || info.Format > FormatVersion {
		return Info{}, false, fmt.Errorf("build: %s section has format %d; this librahost reads format %d", InfoSection, info.Format, FormatVersion)
	}
	return info, true, nil
}

// withInfo returns wasm with info in its InfoSection.
func withInfo(wasm []byte, info Info) []byte {
	info.Format = FormatVersion
	data, _ := json.Marshal(info) // Info always marshals
	return wasmbin.SetCustomSection(wasm, InfoSection, data)
}
