package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	diskfile "github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
)

// ext4 images. go-diskfs reads the filesystem in-process (no e2fsprogs,
// no root, no mount); its tree is turned into a tar stream and applied by
// the same extractor as an image layer, so the same confinement and the
// same ownership records apply (docs/dependencies.md says why not
// debugfs).

// UnpackExt4 makes dir (missing or empty) a root from the ext4 image img,
// and writes a metadata file with no configuration beside it.
func UnpackExt4(img, dir string, warn func(string, ...any)) (*Result, error) {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	imgAbs, err := filepath.Abs(img)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(dir); err != nil {
		return nil, err
	}
	f, err := os.Open(imgAbs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", img)
	}
	fs, err := readExt4(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable ext4 image: %w", img, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".kbox-unpack-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	x, err := newExtractor(tmp, warn)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(ext4Tar(fs, pw, warn))
	}()
	err = x.apply(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	done = true
	meta := Meta{Source: "ext4:" + imgAbs, Digest: ext4Identity(f, fi)}
	if err := WriteMeta(dir, meta); err != nil {
		return nil, err
	}
	return &Result{Meta: meta, Stats: x.stats}, nil
}

// readExt4 opens the filesystem; go-diskfs's errors on damaged images may
// be panics.
func readExt4(f *os.File, size int64) (fs *ext4.FileSystem, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged filesystem: %v", r)
		}
	}()
	return ext4.Read(diskfile.New(f, true), size, 0, 0)
}

// ext4Identity names the image's content as far as the superblock (its
// UUID, last write time and bytes written) and the file's size and time
// say: a key for a cache of unpacked images.
func ext4Identity(f *os.File, fi os.FileInfo) string {
	sb := make([]byte, 1024)
	_, _ = f.ReadAt(sb, 1024)
	h := sha256.New()
	h.Write(sb[0x68:0x78])   // s_uuid
	h.Write(sb[0x30:0x34])   // s_wtime
	h.Write(sb[0x178:0x180]) // s_kbytes_written
	fmt.Fprintf(h, " %d %d", fi.Size(), fi.ModTime().UnixNano())
	return "ext4-sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ext4Tar writes the tree of fs as a tar stream: owners, modes, device
// numbers, symlink targets, and hard links by inode number.
func ext4Tar(fs *ext4.FileSystem, w io.Writer, warn func(string, ...any)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged filesystem: %v", r)
		}
	}()
	tw := tar.NewWriter(w)
	seen := map[uint32]string{} // inode -> first path (hard links)
	dirs := map[uint32]bool{}   // directory inodes walked (loops)
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		if depth > 4096 {
			return fmt.Errorf("%s: directories nested too deep", p)
		}
		ents, err := fs.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range ents {
			n := e.Name()
			if n == "." || n == ".." || n == "" || strings.ContainsRune(n, '/') || strings.ContainsRune(n, 0) {
				warn("skipped a directory entry named %q in %s", n, p)
				continue
			}
			cp := path.Join(p, n)
			fi, err := fs.Stat(cp)
			if err != nil {
				return err
			}
			st, ok := fi.Sys().(*ext4.StatT)
			if !ok {
				return fmt.Errorf("%s: no inode data", cp)
			}
			h := &tar.Header{Name: cp, Mode: modeBits(fi.Mode()), Uid: int(st.UID), Gid: int(st.GID), ModTime: fi.ModTime(),
				Format: tar.FormatPAX}
			t := fi.Mode().Type()
			if t != iofs.ModeDir && st.Nlink > 1 {
				if first, ok := seen[st.Ino]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					if err := tw.WriteHeader(h); err != nil {
						return err
					}
					continue
				}
				seen[st.Ino] = cp
			}
			switch {
			case t == iofs.ModeDir:
				if dirs[st.Ino] {
					warn("skipped %s: a second entry for a directory", cp)
					continue
				}
				dirs[st.Ino] = true
				h.Typeflag, h.Name = tar.TypeDir, cp+"/"
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if err := walk(cp, depth+1); err != nil {
					return err
				}
			case t == iofs.ModeSymlink:
				h.Typeflag, h.Linkname = tar.TypeSymlink, st.LinkTarget
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			case t&iofs.ModeDevice != 0:
				h.Typeflag = tar.TypeBlock
				if t&iofs.ModeCharDevice != 0 {
					h.Typeflag = tar.TypeChar
				}
				h.Devmajor, h.Devminor = int64(st.Major), int64(st.Minor)
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			case t == iofs.ModeNamedPipe:
				h.Typeflag = tar.TypeFifo
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			case t == 0:
				h.Typeflag, h.Size = tar.TypeReg, fi.Size()
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				r, err := fs.Open(cp)
				if err != nil {
					return err
				}
				n, err := io.Copy(tw, io.LimitReader(r, fi.Size()))
				r.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", cp, err)
				}
				if n != fi.Size() {
					return fmt.Errorf("%s: %d bytes of %d", cp, n, fi.Size())
				}
			default:
				warn("skipped %s: a socket", cp)
			}
		}
		return nil
	}
	root, err := fs.Stat(".")
	if err == nil {
		if st, ok := root.Sys().(*ext4.StatT); ok {
			dirs[st.Ino] = true
			h := &tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: modeBits(root.Mode()), Uid: int(st.UID), Gid: int(st.GID),
				ModTime: root.ModTime(), Format: tar.FormatPAX}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
	}
	if err := walk(".", 0); err != nil {
		return err
	}
	return tw.Close()
}

// modeBits is the permission and set-id bits of m as a tar mode.
func modeBits(m iofs.FileMode) int64 {
	b := int64(m.Perm())
	if m&iofs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&iofs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&iofs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// CachedExt4Root is the root a root flag naming an ext4 image runs on:
// the image unpacked (once) into the cache directory
// $XDG_CACHE_HOME/kbox/roots/HEX, HEX from the image's identity (so a
// changed image is unpacked again). unpacked says whether this call did
// it. The cached root is shared by the runs of the same image: what a
// guest writes there stays for the next run (not in the image file).
func CachedExt4Root(img string, warn func(string, ...any)) (dir string, unpacked bool, err error) {
	f, err := os.Open(img)
	if err != nil {
		return "", false, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return "", false, err
	}
	id := ext4Identity(f, fi)
	f.Close()
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", false, fmt.Errorf("%s: no cache directory to unpack the image into: %w", img, err)
	}
	base := filepath.Join(cache, "kbox", "roots")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", false, err
	}
	dir = filepath.Join(base, strings.TrimPrefix(id, "ext4-sha256:"))
	if m, err := ReadMeta(dir); err == nil && m.Digest == id {
		return dir, false, nil
	}
	if _, err := UnpackExt4(img, dir, warn); err != nil {
		// Another kbox may have unpacked it meanwhile.
		if m, merr := ReadMeta(dir); merr == nil && m.Digest == id {
			return dir, false, nil
		}
		return "", false, err
	}
	return dir, true, nil
}

// IsExt4 reports whether the file at p carries an ext2/3/4 superblock
// magic number.
func IsExt4(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 2)
	n, _ := f.ReadAt(b, 1024+0x38)
	return n == 2 && b[0] == 0x53 && b[1] == 0xef
}
