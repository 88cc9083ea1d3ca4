package photos

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agegender/agegender/imageio"
	"github.com/bmatcuk/doublestar/v4"
)

// Input is one file to analyse. Explicit inputs were named on the command
// line; the others were found in a folder or by a glob pattern, so a file
// there that is no photo is skipped rather than an error.
type Input struct {
	Path     string
	Explicit bool
	// Rel is where a file found in a folder lies below that folder
	// ("sub/x.jpg"); empty for files named or matched directly.
	// --annotate mirrors it.
	Rel string
}

// Expand turns the command-line inputs into files: files as they
// are, folders walked recursively (every regular file, whatever its name:
// the decoder tells images by their content), glob patterns expanded
// (filepath.Match's syntax, plus "**" for any number of folders, as in
// 'photos/**/*.jpg', and {a,b} alternatives: package doublestar).
// walked tells whether a folder or pattern was given (worth a progress
// bar). Inputs that give nothing are reported through fail.
func Expand(args []string, fail func(format string, a ...any)) (files []Input, walked bool) {
	for _, in := range args {
		st, err := os.Stat(in)
		if err != nil && strings.ContainsAny(in, "*?[") {
			var opts []doublestar.GlobOption
			if strings.Contains(in, "**") {
				// "**" reaches every folder: its matching folders would
				// repeat the files it matches.
				opts = append(opts, doublestar.WithFilesOnly())
			}
			matches, gerr := doublestar.FilepathGlob(in, opts...)
			if gerr != nil {
				fail("%s: bad glob pattern: %v", in, gerr)
				continue
			}
			if len(matches) == 0 {
				fail("%s: no files match the pattern", in)
				continue
			}
			walked = true
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.IsDir() {
					files = append(files, walkFiles(m, fail)...)
				} else {
					files = append(files, Input{Path: m})
				}
			}
			continue
		}
		if err != nil {
			// Kept as an input: its failure is then reported like any
			// other file's, with a line of its own in --json / --out.
			files = append(files, Input{Path: in, Explicit: true})
			continue
		}
		if st.IsDir() {
			walked = true
			found := walkFiles(in, fail)
			if len(found) == 0 {
				fail("%s: no files in this folder", in)
			}
			files = append(files, found...)
			continue
		}
		files = append(files, Input{Path: in, Explicit: true})
	}
	return files, walked
}

// walkFiles lists the regular files under dir (and symlinks to them) in
// lexical order. Hidden folders (.git, .thumbnails, ...) are not entered,
// and pipes, sockets, devices and symlinked folders are skipped; each is
// named on stderr.
func walkFiles(dir string, fail func(string, ...any)) []Input {
	var out []Input
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fail("%v", err)
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				fmt.Fprintf(os.Stderr, "agegender: not searching %s: hidden folder\n", p)
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			// A symlink is followed to a file; a folder it points to is not
			// walked (no loops). Pipes, sockets and devices are never
			// opened: opening a pipe with no writer would wait forever.
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				fmt.Fprintf(os.Stderr, "agegender: skipping %s: not a regular file\n", p)
				return nil
			}
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = ""
		}
		out = append(out, Input{Path: p, Rel: rel})
		return nil
	})
	return out
}

// ParseShard reads --shard "k/n" (1 ≤ k ≤ n); "" means the whole input,
// returned as 1/1.
func ParseShard(s string) (k, n uint64, err error) {
	if s == "" {
		return 1, 1, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, kerr := strconv.ParseUint(ks, 10, 32)
	n, nerr := strconv.ParseUint(ns, 10, 32)
	if !ok || kerr != nil || nerr != nil || n < 1 || k < 1 || k > n {
		return 0, 0, fmt.Errorf("--shard %q: want k/n with 1 ≤ k ≤ n, as in --shard 3/8 for the third of eight shares", s)
	}
	return k, n, nil
}

// InShard tells whether path belongs to share k of n: shares are chosen by
// FNV-1a 64 of the path exactly as given or found (so "photos/a.jpg" and
// "./photos/a.jpg" differ), modulo n, so n machines running the same
// command line over the same files with --shard 1/n … n/n analyse every
// file exactly once, with no coordination.
func InShard(path string, k, n uint64) bool {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()%n == k-1
}

// Skippable tells the decode errors that mean "this file is not a photo we
// can read" (not an image, a format not supported, an empty file), as
// opposed to a photo that failed (corrupt, too large, unreadable).
func Skippable(err error) bool {
	return errors.Is(err, imageio.ErrNotImage) || errors.Is(err, imageio.ErrUnsupportedFormat) || errors.Is(err, imageio.ErrEmpty)
}
