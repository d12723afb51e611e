package web

import "errors"

// ErrListen: the HTTP address cannot be listened on.
var ErrListen = errors.New("web: cannot listen")
