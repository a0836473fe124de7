package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kbox-go/kbox/internal/tmpdirs"
	"github.com/kbox-go/kbox/internal/vfs"
)

// checkOverlay validates --overlay and --read-only.
func checkOverlay(o Options, s *spec) error {
	s.readOnly = o.ReadOnly
	if !o.Overlay {
		return nil
	}
	if o.ReadOnly {
		return usagef("--overlay and --read-only exclude each other (--overlay makes the root writable without changing it)")
	}
	s.overlay = true
	if o.OverlayDir != "" {
		dir, err := absPath("overlay", o.OverlayDir, o.Cwd)
		if err != nil {
			return err
		}
		s.upper = dir
	}
	return nil
}

// overlayInfo is what the upper directory records of its run
// (vfs.InfoName), for kbox diff and later runs.
type overlayInfo struct {
	Lower string `json:"lower"`
	Root  string `json:"root"` // the root flag: "" (the host's /), -r, -R or -S
}

// mountOverlay mounts the guest's root as an overlay of lower: the upper
// directory is s.upper (made when missing) or a temporary one the
// namespace removes with its private directories.
func mountOverlay(ns *vfs.Namespace, s spec, lower string) error {
	upper := s.upper
	if upper == "" {
		d, err := tmpdirs.Make("overlay", 0o700)
		if err != nil {
			return failf(ExitFailure, "--overlay: making the upper directory: %v", err)
		}
		ns.AdoptPrivate(d)
		upper = d.Path
	} else {
		if err := os.MkdirAll(upper, 0o700); err != nil {
			return failf(ExitFailure, "--overlay=%s: %v", upper, err)
		}
		var err error
		if upper, err = hostPath(upper); err != nil {
			return failf(ExitFailure, "--overlay=%s: %v", s.upper, err)
		}
	}
	info := filepath.Join(upper, vfs.InfoName)
	if b, err := os.ReadFile(info); err == nil {
		var old overlayInfo
		if json.Unmarshal(b, &old) == nil && old.Lower != lower {
			fmt.Fprintf(os.Stderr, "kbox: warning: --overlay=%s was made over %s, now used over %s\n", upper, old.Lower, lower)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		b, _ := json.Marshal(overlayInfo{Lower: lower, Root: rootFlagName(s.root.Kind)})
		if err := os.WriteFile(info, append(b, '\n'), 0o600); err != nil {
			return failf(ExitFailure, "--overlay=%s: %v", upper, err)
		}
	}
	if err := ns.AddOverlay(upper, lower); err != nil {
		return failf(ExitFailure, "--overlay: %v", unwrapMount(err))
	}
	return nil
}

func rootFlagName(k RootKind) string {
	switch k {
	case RootPlain:
		return "-r"
	case RootRecommended:
		return "-R"
	case RootSystem:
		return "-S"
	}
	return ""
}

// ReadOverlayInfo returns the lower directory an upper directory kbox
// made records ("" when it records none).
func ReadOverlayInfo(upper string) string {
	b, err := os.ReadFile(filepath.Join(upper, vfs.InfoName))
	if err != nil {
		return ""
	}
	var info overlayInfo
	if json.Unmarshal(b, &info) != nil {
		return ""
	}
	return info.Lower
}
