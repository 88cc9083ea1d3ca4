//go:build !linux

// agegender patch: see cache.go.

package onnxbackend

import "github.com/pkg/errors"

// cacheSupported: only Linux maps the cache's files; elsewhere sessions
// are created without the cache.
const cacheSupported = false

func mapFile(string) ([]byte, func(), error) {
	return nil, nil, errors.New("the optimized-model cache needs Linux")
}
