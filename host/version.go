package host

import (
	"runtime/debug"
	"sync"

	"github.com/librahost/librahost/ckpt"
)

// WazeroVersion is the version of wazero this binary runs guests with; a
// checkpoint is bound to it.
var WazeroVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
})

// SetFailpoints arms the checkpoint store's failpoints (see
// ckpt.SetFailpoints); the CLI reads them from LIBRAHOST_FAILPOINTS.
func SetFailpoints(spec string) error { return ckpt.SetFailpoints(spec) }
