package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/image"
	"github.com/kbox-go/kbox/internal/launch"
)

const imageUsage = `Usage:
  kbox image pull [--platform OS/ARCH[/VARIANT]] [--no-cache] [--cache-max SIZE] [-q] REF DIR
  kbox image unpack IMAGE.ext4 DIR
  kbox image prune [--keep SIZE]

pull makes DIR (missing or empty) a guest root from an image: REF is a
registry reference (docker.io/library/alpine:3.21, NAME@sha256:..., an
optional docker:// prefix), docker-archive:FILE, oci-archive:FILE or
oci:DIR[:TAG]. Registry layers are cached in $XDG_CACHE_HOME/kbox/layers.
unpack makes DIR a root from an ext4 filesystem image. Owners, modes,
set-id bits and device nodes are recorded for kbox -S / kbox run
(docs/images.md). prune empties the layer cache (down to --keep).
`

func imageCommand(args []string) (int, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(imageUsage)
		return 0, nil
	}
	fs := pflag.NewFlagSet("kbox image "+args[0], pflag.ContinueOnError)
	fs.Usage = func() {}
	usage := func(err error) (int, error) {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(imageUsage + "\nFlags of kbox image " + args[0] + ":\n" + fs.FlagUsagesWrapped(80))
			return 0, nil
		}
		return launch.ExitFailure, fmt.Errorf("image %s: %v (see kbox image --help)", args[0], err)
	}
	switch args[0] {
	case "pull":
		var o image.Options
		var noCache, quiet bool
		var cacheMax string
		fs.StringVar(&o.Platform, "platform", "", "the platform to pull from a multi-platform image (default: the host's)")
		fs.BoolVar(&noCache, "no-cache", false, "do not use the layer cache")
		fs.StringVar(&cacheMax, "cache-max", "", "trim the layer cache to SIZE after the pull (default 4G)")
		fs.BoolVarP(&quiet, "quiet", "q", false, "no progress")
		if err := fs.Parse(args[1:]); err != nil {
			return usage(err)
		}
		if fs.NArg() != 2 {
			return usage(fmt.Errorf("want REF DIR"))
		}
		if noCache {
			o.CacheDir = "-"
		}
		if cacheMax != "" {
			n, err := image.ParseSize(cacheMax)
			if err != nil {
				return usage(err)
			}
			o.CacheMax = n
		}
		o.Warn = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "kbox: warning: "+format+"\n", a...) }
		if !quiet {
			o.Progress = image.NewProgress(os.Stderr, isTerminal(2))
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		t0 := time.Now()
		res, err := image.Pull(ctx, fs.Arg(0), fs.Arg(1), o)
		o.Progress.Stop()
		if err != nil {
			return launch.ExitFailure, err
		}
		report(res, fs.Arg(1), time.Since(t0))
		return 0, nil
	case "unpack":
		if err := fs.Parse(args[1:]); err != nil {
			return usage(err)
		}
		if fs.NArg() != 2 {
			return usage(fmt.Errorf("want IMAGE.ext4 DIR"))
		}
		t0 := time.Now()
		res, err := image.UnpackExt4(fs.Arg(0), fs.Arg(1), func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "kbox: warning: "+format+"\n", a...)
		})
		if err != nil {
			return launch.ExitFailure, err
		}
		report(res, fs.Arg(1), time.Since(t0))
		return 0, nil
	case "prune":
		keep := "0"
		fs.StringVar(&keep, "keep", "0", "keep the most recently used layers up to SIZE")
		if err := fs.Parse(args[1:]); err != nil {
			return usage(err)
		}
		n, err := image.ParseSize(keep)
		if err != nil {
			return usage(err)
		}
		dir, err := image.DefaultCacheDir()
		if err != nil {
			return launch.ExitFailure, err
		}
		r, err := image.Prune(dir, n)
		if err != nil {
			return launch.ExitFailure, err
		}
		fmt.Printf("removed %d layers (%d bytes), kept %d (%d bytes) in %s\n", r.Removed, r.RemovedBytes, r.Kept, r.KeptBytes, dir)
		return 0, nil
	}
	return launch.ExitFailure, fmt.Errorf("image: unknown subcommand %q (see kbox image --help)", args[0])
}

func report(res *image.Result, dir string, d time.Duration) {
	s := res.Stats
	fmt.Fprintf(os.Stderr, "kbox: %s (%s, %s) into %s: %d entries, %d files, %d MiB in %.2fs; configuration in %s\n",
		res.Meta.Source, res.Meta.Digest, res.Meta.Platform, dir, s.Entries, s.Files, s.Bytes>>20, d.Seconds(), image.MetaPath(dir))
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

const runUsage = `Usage: kbox run [flags] DIR [--] [ARGS...]

Run a root made by kbox image pull or unpack with its image's
configuration, as docker run does: the guest runs as the image's User
(root: as -0; another user: as --change-id), in its WorkingDir, with its
Env (plus PATH and HOME when it lacks them, and your TERM), the command
Entrypoint + Cmd; ARGS replace Cmd. DIR is mounted as by
--recommended-root. Every kbox flag but the root flags and -c applies on
top (-w, --change-id, -0, --setenv...). Extra flag:
  --entrypoint CMD   replace the image's Entrypoint (and drop its Cmd)
`

func runImage(args []string) (int, error) {
	var f flags
	fs := newFlagSet(&f)
	entrypoint := fs.String("entrypoint", "", "replace the image's Entrypoint")
	if err := fs.Parse(args); err != nil {
		return launch.ExitFailure, fmt.Errorf("run: %v (see kbox run --help)", err)
	}
	if f.help {
		fmt.Print(runUsage + "\nFlags:\n" + fs.FlagUsagesWrapped(80))
		return 0, nil
	}
	for _, n := range []string{"root-dir", "recommended-root", "system-root", "command"} {
		if fs.Changed(n) {
			return launch.ExitFailure, fmt.Errorf("run: --%s cannot be used with kbox run (see kbox run --help)", n)
		}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return launch.ExitFailure, fmt.Errorf("run: want DIR (see kbox run --help)")
	}
	dir, err := filepath.Abs(rest[0])
	if err != nil {
		return launch.ExitFailure, err
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	o, err := options(f, fs)
	if err != nil {
		return launch.ExitFailure, err
	}
	r := image.RunOptions{Dir: dir, Args: rest, HostEnv: o.HostEnv}
	if fs.Changed("entrypoint") {
		r.Entrypoint = entrypoint
	}
	if err := image.ApplyRun(&o, r); err != nil {
		return launch.ExitFailure, err
	}
	return start(o)
}

// ext4Roots replaces a root flag's value that names an ext4 image with
// the image unpacked into the cache (any other file is left for launch to
// refuse).
func ext4Roots(o *launch.Options) error {
	for i, r := range o.Roots {
		fi, err := os.Stat(r.Dir)
		if err != nil || !fi.Mode().IsRegular() || !image.IsExt4(r.Dir) {
			continue
		}
		dir, unpacked, err := image.CachedExt4Root(r.Dir, func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "kbox: warning: "+format+"\n", a...)
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Kind.Flag(), r.Dir, err)
		}
		if unpacked {
			fmt.Fprintf(os.Stderr, "kbox: unpacked %s into %s\n", r.Dir, dir)
		}
		o.Roots[i].Dir = dir
	}
	return nil
}
