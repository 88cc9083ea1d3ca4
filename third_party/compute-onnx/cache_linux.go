// agegender patch: see cache.go.

package onnxbackend

import (
	"os"
	"syscall"

	"github.com/pkg/errors"
)

// cacheSupported: the cache maps its files (mapFile).
const cacheSupported = true

// mapFile maps the file at path read-only, its pages read in at once
// (MAP_POPULATE: one system call instead of a fault per page), and
// returns its bytes and the function that unmaps them.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := info.Size()
	if size <= 0 || size != int64(int(size)) {
		return nil, nil, errors.Errorf("cache file has %d bytes", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
