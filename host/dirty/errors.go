package dirty

import "errors"

// ErrUnsupported is wrapped by New's error when the kernel (or the
// platform) cannot track written pages.
var ErrUnsupported = errors.New("dirty: write tracking is not supported")
