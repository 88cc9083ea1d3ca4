// Package backend opens the GoMLX compute backend a run asks for, and says
// which one it got.
//
//   - "go": pure Go (github.com/gomlx/compute/gobackend), always available,
//     no cgo. Build with GOEXPERIMENT=simd for its fast kernels.
//   - "onnx": ONNX Runtime on the CPU; needs the binary built with
//     -tags onnx and libonnxruntime.so (see the README).
//   - "xla": XLA through a PJRT plugin (GPUs); needs -tags xla.
//
// The name may carry a configuration after a colon, as in GoMLX's
// GOMLX_BACKEND variable ("xla:/path/to/xla_cuda_plugin.so"). When name is
// empty, GOMLX_BACKEND is used, then "go". A backend that is not compiled
// in, or cannot start, is an error that says how to fix it — never a silent
// fall-back to another backend.
package backend

import (
	"fmt"
	"os"
	"strings"

	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the default, pure-Go backend
)

// Open starts the named backend.
func Open(name string) (b compute.Backend, err error) {
	if name == "" {
		name = os.Getenv(compute.ConfigEnvVar)
	}
	if name == "" {
		name = "go"
	}
	kind, _, _ := strings.Cut(name, ":")
	if !compiledIn(kind) {
		return nil, fmt.Errorf("backend %q is not compiled into this binary; %s", kind, howTo(kind))
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q failed to start: %v; %s", name, r, howTo(kind))
		}
	}()
	b, err = compute.NewWithConfig(name)
	if err != nil {
		return nil, fmt.Errorf("backend %q failed to start: %w; %s", name, err, howTo(kind))
	}
	return b, nil
}

func compiledIn(kind string) bool {
	for _, k := range compute.List() {
		if k == kind {
			return true
		}
	}
	return false
}

func howTo(kind string) string {
	switch kind {
	case "onnx":
		return "build with `-tags onnx` and run ./setup.sh, which installs ONNX Runtime into .deps/ (or set ONNXRUNTIME_SHARED_LIBRARY_PATH)"
	case "xla":
		return "build with `-tags xla` and set GOMLX_BACKEND=xla:<path to a PJRT plugin> (see ../shared/gpu/README.md)"
	case "go":
		return "the pure-Go backend is always compiled in"
	}
	return "known backends: go, onnx, xla"
}

// Impl returns how network ops should be expressed on backend b: native
// convolution and pooling on XLA, the portable gather-based forms elsewhere
// (see package ops).
func Impl(b compute.Backend) ops.Impl {
	if strings.HasPrefix(b.Name(), "xla") {
		return ops.Native
	}
	return ops.Portable
}

// Describe is the one line a command prints about where it runs.
func Describe(b compute.Backend) string {
	return fmt.Sprintf("backend %s (%s), ops %s", b.Name(), b.Description(), Impl(b))
}
