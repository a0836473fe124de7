//go:build !(cgo && linux)

package sandbox

import "errors"

// Confined reports whether this process was confined before Go started:
// never in a build without cgo (there is no constructor).
func Confined() bool { return false }

func droppedCaps() bool { return false }

// Supported reports whether this build can confine an in-process child.
func Supported() error {
	return errors.New("this kbox was built without cgo: in-process guests cannot be confined")
}
