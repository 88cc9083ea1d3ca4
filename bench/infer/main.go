// Command infer times a model file's inference per face at batch 1 and 32
// on one backend, the way package agegender runs it (model.Predictor with
// backend.InferenceImpl), and reports the process's peak resident memory.
// It also reports the CPU time per face (all threads): on a machine busy
// with other jobs the wall time per face grows with the load, the CPU
// time much less.
//
//	go run -tags onnx ./bench/infer --backend onnx --model runs/joint/model.agm
//	go run ./bench/infer --backend go --builtin gender
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/bench/internal/timing"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/agegender/agegender/models"
)

func main() {
	be := flag.String("backend", "", "compute backend (go, onnx, xla)")
	path := flag.String("model", "", "model file")
	builtin := flag.String("builtin", "", "a built-in model instead: gender, age or gender+age")
	secs := flag.Float64("secs", 5, "seconds of timed calls per batch size")
	batches := flag.String("batches", "1,32", "batch sizes")
	impl := flag.String("impl", "", "ops: portable, native or auto (default: backend.InferenceImpl, as the library)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed calls (all batch sizes) to this file (go tool pprof)")
	flag.Parse()
	if err := run(*be, *path, *builtin, *secs, *batches, *impl, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "infer:", err)
		os.Exit(1)
	}
}

func run(be, path, builtin string, secs float64, batches, implName, cpuProfile string) error {
	b, err := backend.Open(be)
	if err != nil {
		return err
	}
	var m *model.Model
	if builtin != "" {
		m, err = models.Builtin(builtin)
	} else {
		m, err = model.Load(path)
	}
	if err != nil {
		return err
	}
	impl := backend.InferenceImpl(b)
	switch implName {
	case "":
	case "portable":
		impl = ops.Portable
	case "native":
		impl = ops.Native
	case "auto":
		impl = ops.Auto
	default:
		return fmt.Errorf("unknown --impl %q", implName)
	}
	p, err := model.NewPredictor(b, m, impl)
	if err != nil {
		return err
	}
	defer p.Close()
	in := m.Info.Config.Input
	name := path
	if builtin != "" {
		name = "built-in " + builtin
	}
	if cpuProfile != "" {
		// The profile covers the timed calls (with their warm-up and
		// compilation), not loading the model.
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, bs := range strings.Split(batches, ",") {
		var n int
		if _, err := fmt.Sscan(bs, &n); err != nil || n <= 0 {
			return fmt.Errorf("bad batch size %q", bs)
		}
		x := make([]float32, n*in*in*3)
		var callErr error
		calls := 0
		var cpu0 time.Duration
		ms := timing.MsPerCall(secs, func() {
			if calls == 2 { // after MsPerCall's two warm-up calls
				cpu0 = cpuTime()
			}
			calls++
			if _, err := p.Probs(x, n); err != nil {
				callErr = err
			}
		})
		if callErr != nil {
			return callErr
		}
		cpuMs := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(calls-2)
		fmt.Printf("%s\t%s\tinput %d\tbatch %d\t%.2f ms/face\tCPU %.2f ms/face\tpeak RSS %s\t%s\n", name, b.Name(), in, n, ms/float64(n), cpuMs/float64(n), peakRSS(), impl)
	}
	return nil
}

// cpuTime is the process's user and system CPU time so far (all threads,
// ONNX Runtime's included). On a machine shared with other jobs it varies
// less than the wall time per call.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the process's peak resident set size (VmHWM) from /proc.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
