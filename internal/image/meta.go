package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Meta is what kbox keeps of a pulled image beside its root, in
// MetaPath(dir): where it came from and the configuration kbox run
// applies.
type Meta struct {
	Source   string `json:"source"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	Config   Config `json:"config"`
}

// Config is the part of an image's configuration a run uses, as docker
// run applies it.
type Config struct {
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
}

func configOf(cf *v1.ConfigFile) Config {
	c := cf.Config
	return Config{Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, User: c.User}
}

// MetaPath is the metadata file of the root dir: NAME.kbox-image.json
// beside it, outside the guest's view.
func MetaPath(dir string) string {
	return filepath.Clean(dir) + ".kbox-image.json"
}

// WriteMeta writes m for the root dir (atomically).
func WriteMeta(dir string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	p := MetaPath(dir)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ReadMeta reads the metadata of the root dir.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(MetaPath(dir))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", MetaPath(dir), err)
	}
	return m, nil
}
