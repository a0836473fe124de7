package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/kbox-go/kbox/internal/launch"
	"github.com/kbox-go/kbox/internal/vfs"
)

// runDiff is kbox diff [--lower DIR] UPPER: what a run with
// --overlay=UPPER changed, one line per path as docker diff prints them
// (A added, C changed, D deleted).
func runDiff(args []string) (int, error) {
	fs := pflag.NewFlagSet("kbox diff", pflag.ContinueOnError)
	lower := fs.String("lower", "", "the lower directory (`DIR`; default: the one the upper directory records)")
	help := fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		return launch.ExitFailure, err
	}
	if *help {
		fmt.Print("Usage: kbox diff [--lower DIR] UPPER\n\nList what a run with --overlay=UPPER changed in its root: A added, C changed,\nD deleted (as docker diff). Without --lower, the lower directory is the\none UPPER records.\n\nFlags:\n" + fs.FlagUsages())
		return 0, nil
	}
	if fs.NArg() != 1 {
		return launch.ExitFailure, fmt.Errorf("expected one upper directory (see kbox diff --help)")
	}
	upper := fs.Arg(0)
	if *lower == "" {
		*lower = launch.ReadOverlayInfo(upper)
		if *lower == "" {
			return launch.ExitFailure, fmt.Errorf("%s records no lower directory (not made by kbox --overlay=DIR?): give --lower", upper)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	err := vfs.Diff(upper, *lower, func(kind byte, p string) {
		fmt.Fprintf(w, "%c %s\n", kind, p)
	})
	if err != nil {
		return launch.ExitFailure, err
	}
	return 0, nil
}
