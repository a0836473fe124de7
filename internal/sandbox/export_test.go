//go:build cgo && linux

package sandbox

// Placeholders exposes placeholders to the external tests.
var Placeholders = placeholders
