package lazy

import "errors"

// ErrUnsupported is wrapped by Start's error when this process cannot
// restore lazily here (the kernel, the permissions or the platform).
var ErrUnsupported = errors.New("lazy: lazy restore is not supported here")
