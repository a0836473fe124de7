package image

import "fmt"

// UnpackExt4 makes dir a root from an ext4 image.
func UnpackExt4(img, dir string, warn func(string, ...any)) (*Result, error) {
	return nil, fmt.Errorf("not yet")
}
