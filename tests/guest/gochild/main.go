// Command gochild is a kbox guest program: a static Go binary (build with
// CGO_ENABLED=0) that does file I/O from 8 goroutines in /tmp, then runs
// /bin/hello with os/exec. Go's os/exec starts children with
// clone(CLONE_VM|CLONE_VFORK) from a multi-threaded process.
//
// Output: "io: ok", the child's output (the lines of "/bin/hello from-go"),
// then "done". Errors go to stderr and the exit status is 1.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gochild: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for round := 0; round < 20; round++ {
				p := fmt.Sprintf("/tmp/gochild-%d-%d", os.Getpid(), i)
				want := []byte(fmt.Sprintf("goroutine %d round %d\n", i, round))
				if err := os.WriteFile(p, want, 0o644); err != nil {
					errs <- err
					return
				}
				got, err := os.ReadFile(p)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("%s: read %q, want %q", p, got, want)
					return
				}
				fi, err := os.Stat(p)
				if err != nil {
					errs <- err
					return
				}
				if fi.Size() != int64(len(want)) || !fi.Mode().IsRegular() {
					errs <- fmt.Errorf("%s: stat size %d mode %v", p, fi.Size(), fi.Mode())
					return
				}
				if err := os.Remove(p); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("file I/O: %v", err)
	}
	fmt.Println("io: ok")

	out, err := exec.Command("/bin/hello", "from-go").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			fail("running /bin/hello: %v (stderr %q)", err, ee.Stderr)
		}
		fail("running /bin/hello: %v", err)
	}
	os.Stdout.Write(out) //nolint:errcheck
	fmt.Println("done")
}
