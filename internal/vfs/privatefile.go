package vfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kbox-go/kbox/internal/tmpdirs"
)

// AddPrivateFile mounts a read-only file of kbox's making, holding data,
// at guest path guest (a file bind: AddBind with NoFollow), in a private
// directory removed with the namespace's others (RemovePrivate). kind
// names the directory (tmpdirs.Make).
func (ns *Namespace) AddPrivateFile(guest, kind string, data []byte) error {
	d, err := tmpdirs.Make(kind, 0o755)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMount, err)
	}
	src := filepath.Join(d.Path, filepath.Base(guest))
	if err := os.WriteFile(src, data, 0o444); err != nil {
		d.Remove()
		return fmt.Errorf("%w: %v", ErrBadMount, err)
	}
	if _, err := ns.AddBind(guest, src, BindOptions{ReadOnly: true, NoFollow: true}); err != nil {
		d.Remove()
		return err
	}
	ns.private = append(ns.private, d)
	return nil
}
