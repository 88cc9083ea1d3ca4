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
	"path/filepath"
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
	// Nothing may be downloaded at run time.
	os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	if kind == "onnx" && os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH") == "" {
		if lib := findORT(); lib != "" {
			os.Setenv("ONNXRUNTIME_SHARED_LIBRARY_PATH", lib)
		} else {
			return nil, fmt.Errorf("ONNX Runtime not found; run ./setup.sh (it installs it into .deps/onnxruntime) or set ONNXRUNTIME_SHARED_LIBRARY_PATH to libonnxruntime.so (version >= 1.26)")
		}
	}
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

// ORTRelPath is where setup.sh installs ONNX Runtime, relative to the
// repository root.
const ORTRelPath = ".deps/onnxruntime/libonnxruntime.so.1"

// findORT looks for the project-local ONNX Runtime next to the executable
// and in the working directory and its parents.
func findORT() string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, ORTRelPath)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
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

// InferenceImpl returns how network ops should be expressed for inference
// (forward passes only) on backend b. ONNX Runtime computes the forward
// pass of its native convolution and pooling exactly — only their
// gradients are wrong — and its native convolution is faster than the
// portable form from batch 8 on and slower below (BENCHMARKS.md), so
// inference there picks by batch size (ops.Auto); XLA always uses native
// ops; training keeps Impl.
func InferenceImpl(b compute.Backend) ops.Impl {
	switch {
	case strings.HasPrefix(b.Name(), "xla"):
		return ops.Native
	case strings.HasPrefix(b.Name(), "onnx"):
		return ops.Auto
	}
	return ops.Portable
}

// Describe is the one line a command prints about where it runs.
func Describe(b compute.Backend) string {
	return fmt.Sprintf("backend %s (%s), ops %s", b.Name(), b.Description(), Impl(b))
}
