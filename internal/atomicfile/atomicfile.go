// Package atomicfile writes files so that a reader sees either the old
// content or the new, never a mix, and a crash or error leaves no
// half-written file under the final name.
//
// The one writer every package uses for its outputs (model files,
// checkpoints, plots, caches, tables): the data goes to a temporary file
// in the destination folder (".NAME.tmp-*", so a crash leaves it hidden),
// which is synced, given the requested permissions (os.CreateTemp would
// leave it 0600), closed and renamed over the destination; the folder is
// then synced so the rename itself survives a crash.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what write writes to w, with
// permissions perm (0o644 for ordinary files). Missing parent folders are
// created (0o755). On any error — including one returned by write — the
// temporary file is removed, path keeps its old content, and the error
// names path.
func Write(path string, perm fs.FileMode, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Best effort: not every file system can sync a folder.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// WriteFile is [Write] for data already in memory.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
