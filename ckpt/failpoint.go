package ckpt

// failpoint, when set (by tests), is called before each durable write with
// the write's name; a non-nil result makes that write fail.
//
// Names: "commit:batch" (an early batch of chunks), "commit:chunks", "commit:manifest", "commit:gc", "commit:tx",
// "delete:tx".
var failpoint func(name string) error

func fail(name string) error {
	if f := failpoint; f != nil {
		return f(name)
	}
	return nil
}
