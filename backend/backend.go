// Package backend opens the GoMLX compute backend a run asks for, and says
// which one it got.
//
//   - "go": pure Go (github.com/gomlx/compute/gobackend, patched in
//     third_party/compute), always available, no cgo. Build with
//     GOEXPERIMENT=simd for its fast kernels.
//   - "onnx": ONNX Runtime on the CPU; needs the binary built with
//     -tags onnx (./setup.sh does when it installed ONNX Runtime) and
//     libonnxruntime.so at run time (see [ORTLibrary]).
//   - "xla": XLA through a PJRT plugin (GPUs); needs -tags xla.
//
// The name may carry a configuration after a colon, as in GoMLX's
// GOMLX_BACKEND variable ("xla:/path/to/xla_cuda_plugin.so"). When name is
// empty, GOMLX_BACKEND is used, then [Default]: the fastest backend this
// binary can run. A backend named explicitly is strict: one that is not
// compiled in, or cannot start, is an error that says how to fix it — never
// a silent fall-back to another backend. Nothing is ever downloaded at run
// time, and the process environment is left alone.
package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend, always there
)

// Open starts the named backend ("" for GOMLX_BACKEND, then [Default]).
func Open(name string) (b compute.Backend, err error) {
	return open(name, false)
}

// OpenInference starts the named backend like [Open], for a program that
// only runs networks forward on weights that never change while it runs
// (an agegender.Analyzer): on pure Go, graph constants then use the
// memory of the tensors they are built from instead of a copy (the
// "share_constants" option of the patched backend in third_party/compute),
// which at start-up saves touching the weights' memory a second time
// (18 MB for the built-in model; BENCHMARKS.md §7). On ONNX Runtime,
// sessions come from a cache of optimized graphs in [ORTCacheDir] (the
// "cache" option of the patched backend in third_party/compute-onnx): a
// process that runs a graph this machine has run before skips the
// graph optimisation, about 0.25 s for the built-in classifier. The
// configuration "onnx:cpu,cache=" turns the cache off; "cache=DIR" moves
// it.
func OpenInference(name string) (compute.Backend, error) {
	return open(name, true)
}

func open(name string, inference bool) (b compute.Backend, err error) {
	if name == "" {
		name = os.Getenv(compute.ConfigEnvVar)
	}
	if name == "" {
		name, _ = Default()
	}
	kind, config, _ := strings.Cut(name, ":")
	if inference && kind == "go" && !hasOption(config, "share_constants") {
		config = strings.TrimPrefix(config+",share_constants", ",")
		name = kind + ":" + config
	}
	if !compiledIn(kind) {
		return nil, fmt.Errorf("backend %q is not compiled into this binary; %s", kind, howTo(kind))
	}
	if isONNX(kind) {
		// The library path travels in the configuration (a patch in
		// third_party/compute-onnx), so nothing is auto-installed and no
		// environment variable is set.
		if !hasOption(config, "lib") {
			lib := ORTLibrary()
			if env := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"); lib == "" && env != "" {
				return nil, fmt.Errorf("ONNXRUNTIME_SHARED_LIBRARY_PATH names %s, which is neither libonnxruntime.so nor a folder holding it; point it at libonnxruntime.so (version >= 1.26) or its folder, or unset it to use the one ./setup.sh installs", env)
			}
			if lib == "" {
				return nil, fmt.Errorf("ONNX Runtime not found; run ./setup.sh (it installs it into %s) or set ONNXRUNTIME_SHARED_LIBRARY_PATH to libonnxruntime.so (version >= 1.26)", filepath.Dir(ORTRelPath))
			}
			config = strings.TrimPrefix(config+",lib="+lib, ",")
		}
		if inference && !hasOption(config, "cache") {
			if dir := ORTCacheDir(); dir != "" {
				config = strings.TrimPrefix(config+",cache="+dir, ",")
			}
		}
		name = kind + ":" + config
	}
	hint := howTo(kind)
	if isONNX(kind) {
		// Compiled in: the library is what failed.
		hint = "ONNXRUNTIME_SHARED_LIBRARY_PATH, or ./setup.sh's install in .deps/, must be ONNX Runtime's libonnxruntime.so, version >= 1.26"
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q failed to start: %v; %s", name, r, hint)
		}
	}()
	b, err = compute.NewWithConfig(name)
	if err != nil {
		return nil, fmt.Errorf("backend %q failed to start: %w; %s", name, err, hint)
	}
	return b, nil
}

// Chosen reports whether a run asked for a backend: name is not empty or
// GOMLX_BACKEND is set, so that Open does not fall back to [Default].
func Chosen(name string) bool {
	return name != "" || os.Getenv(compute.ConfigEnvVar) != ""
}

// Default returns the backend Open starts when neither its argument nor
// GOMLX_BACKEND names one: "onnx:cpu" (ONNX Runtime on the CPU, several
// times faster; BENCHMARKS.md) when this binary was built with -tags onnx
// and [ORTLibrary] finds the library, otherwise "go". When ONNX Runtime is
// compiled in but its library is missing, note is one line saying so and
// how to install it; otherwise it is empty. [Describe] includes the note.
func Default() (name, note string) {
	if !compiledIn("onnx") {
		return "go", ""
	}
	if ORTLibrary() != "" {
		return "onnx:cpu", ""
	}
	return "go", "ONNX Runtime is compiled in but libonnxruntime was not found, so this runs on pure Go (./setup.sh installs it into " + filepath.Dir(ORTRelPath) + ", or set ONNXRUNTIME_SHARED_LIBRARY_PATH)"
}

// ORTRelPath is where setup.sh installs ONNX Runtime, relative to the
// repository root.
const ORTRelPath = ".deps/onnxruntime/libonnxruntime.so.1"

// ORTLibrary returns the ONNX Runtime shared library to load, or "" if
// there is none: the file ONNXRUNTIME_SHARED_LIBRARY_PATH names (or
// libonnxruntime.so.1 or .so in the folder it names, or in its lib/), else
// ORTRelPath under the executable's folder or under the working directory
// or one of its parents (so the binary ./setup.sh builds, and the tests of
// every package, find the library ./setup.sh installed).
func ORTLibrary() string {
	if p := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"); p != "" {
		st, err := os.Stat(p)
		if err == nil && st.IsDir() {
			// A folder: the library in it, as ONNX Runtime's releases
			// and setup.sh lay it out.
			for _, name := range []string{"libonnxruntime.so.1", "libonnxruntime.so", "lib/libonnxruntime.so.1", "lib/libonnxruntime.so"} {
				if st, err := os.Stat(filepath.Join(p, name)); err == nil && !st.IsDir() {
					return filepath.Join(p, name)
				}
			}
			return ""
		}
		if err == nil {
			return p
		}
		return ""
	}
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

// ORTCacheDir is where [OpenInference] keeps ONNX Runtime's optimized
// graphs: agegender/onnxruntime under the user's cache folder
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux), "" when there
// is none. Each file is named by a hash of the graph, the ONNX Runtime
// version and the CPU; the folder is kept under 1 GiB, least recently
// used files deleted first, and may be deleted at any time.
func ORTCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "agegender", "onnxruntime")
}

func isONNX(kind string) bool { return kind == "onnx" || kind == "onnxruntime" }

// hasOption reports whether a comma-separated configuration sets key or
// key=….
func hasOption(config, key string) bool {
	for _, part := range strings.Split(config, ",") {
		if k, _, _ := strings.Cut(part, "="); strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// Compiled lists the backends compiled into this binary: "go", and "onnx"
// or "xla" with their build tags (aliases such as "onnxruntime" left out).
func Compiled() []string {
	var out []string
	for _, k := range compute.List() {
		if k != "onnxruntime" {
			out = append(out, k)
		}
	}
	sort.Strings(out) // compute.List is in map order
	return out
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

// Describe is the one line a command prints about where it runs, after
// "backend: ": which backend in words ("pure Go", "ONNX Runtime", "XLA")
// and its own description; on pure Go, whether the binary has the SIMD
// kernels (GOEXPERIMENT=simd), and, in a binary that has ONNX Runtime
// compiled in but cannot find its library, Default's note.
func Describe(b compute.Backend) string {
	kind := b.Name()
	switch name := strings.ToLower(b.Name()); {
	case strings.HasPrefix(name, "go"):
		kind = "pure Go"
	case strings.HasPrefix(name, "onnx"):
		kind = "ONNX Runtime"
	case strings.HasPrefix(name, "xla"):
		kind = "XLA"
	}
	s := fmt.Sprintf("%s (%s)", kind, b.Description())
	if kind == "pure Go" {
		// runtime.Version carries the experiments the binary was built
		// with ("go1.26.8-X:simd").
		if strings.Contains(runtime.Version(), "simd") {
			s += ", SIMD kernels"
		} else {
			s += ", portable loops (build with GOEXPERIMENT=simd for SIMD kernels, several times faster)"
		}
		if _, note := Default(); note != "" {
			s += "; " + note
		}
	}
	return s
}
