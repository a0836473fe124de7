//go:build !(cgo && linux)

// Command cgocallback measures cgo call and callback costs; it needs cgo
// on Linux (see main.go).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "cgocallback: built without cgo (or not for Linux): build it with CGO_ENABLED=1 and a C compiler")
	os.Exit(1)
}
