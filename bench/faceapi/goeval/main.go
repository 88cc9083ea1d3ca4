// Command goeval runs face-api's age/gender net as imported into Go
// (interop/faceapi) on the UTKFace test split, the Go counterpart of
// bench/faceapi/peer.js: same split (data/utkface), same groups
// (data.AgeGroupOf of the predicted age rounded to whole years), same
// metrics, plus the inference time per face at batch 1 (the test faces,
// JPEG decode excluded, Pixels' resize included) and at other batch sizes
// (timed on zeros). It prints a markdown row.
//
//	go run ./bench/faceapi/goeval --backend go
//	CGO_ENABLED=1 go run -tags onnx ./bench/faceapi/goeval --backend onnx
//
// --package is the installed @vladmandic/face-api folder (bench/faceapi.sh
// installs it in bench/faceapi/node_modules).
package main

import (
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	"math"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/bench/internal/timing"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/interop/faceapi"
	"github.com/agegender/agegender/interop/tfjs"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func main() {
	be := flag.String("backend", "", "compute backend (go, onnx, xla; default: GOMLX_BACKEND or go)")
	pkg := flag.String("package", "bench/faceapi/node_modules/@vladmandic/face-api", "installed @vladmandic/face-api folder")
	images := flag.String("images", "../shared/data/utkface/images", "UTKFace images folder")
	limit := flag.Int("limit", 0, "evaluate only the first N test faces (0: all)")
	batches := flag.String("batches", "32", "batch sizes also timed, on zeros (empty: none)")
	secs := flag.Float64("secs", 3, "seconds of timed calls per extra batch size")
	flag.Parse()
	if err := run(*be, *pkg, *images, *limit, *batches, *secs); err != nil {
		fmt.Fprintln(os.Stderr, "goeval:", err)
		os.Exit(1)
	}
}

func run(be, pkg, images string, limit int, batches string, secs float64) error {
	g, err := faceapi.Load(faceapi.ModelDir(pkg))
	if err != nil {
		return err
	}
	b, err := backend.Open(be)
	if err != nil {
		return err
	}
	exec, err := graph.NewExec(b, func(x *graph.Node) []*graph.Node {
		outs, err := g.BuildWith(x.Graph(), map[string]*graph.Node{faceapi.Input: x},
			[]string{faceapi.Age, faceapi.Gender}, tfjs.BuildOptions{Inference: true})
		if err != nil {
			panic(err)
		}
		return outs
	})
	if err != nil {
		return err
	}
	samples, skipped, err := utkface.Load(images)
	if err != nil {
		return err
	}
	_, _, test := utkface.SplitSamples(samples)
	if limit > 0 && limit < len(test) {
		test = test[:limit]
	}
	call := func(x []float32, n int) ([]float32, []float32, error) {
		outs, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, faceapi.Size, faceapi.Size, 3))
		if err != nil {
			return nil, nil, err
		}
		return tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1]), nil
	}
	zero := make([]float32, faceapi.Size*faceapi.Size*3)
	for range 3 { // compile and warm up
		if _, _, err := call(zero, 1); err != nil {
			return err
		}
	}
	var gender, exact, oneOff, cs5, negative int
	var absErr float64
	var wall, cpu []float64
	for _, s := range test {
		f, err := os.Open(s.Path)
		if err != nil {
			return err
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		c0, t0 := cpuTime(), time.Now()
		ages, probs, err := call(faceapi.Pixels(img), 1)
		if err != nil {
			return err
		}
		wall = append(wall, float64(time.Since(t0).Microseconds())/1000)
		cpu = append(cpu, float64((cpuTime()-c0).Microseconds())/1000)
		age := float64(ages[0])
		pred := data.Female
		if probs[0] > 0.5 { // face-api: male when P(male) > 0.5
			pred = data.Male
		}
		if pred == s.Gender {
			gender++
		}
		if age < 0 {
			negative++
		}
		d := int(data.AgeGroupOf(int(math.Round(max(age, 0))))) - int(s.AgeGroup)
		if d == 0 {
			exact++
		}
		if d >= -1 && d <= 1 {
			oneOff++
		}
		e := math.Abs(age - float64(s.Age))
		absErr += e
		if e <= 5 {
			cs5++
		}
	}
	n := len(test)
	if n == 0 {
		return fmt.Errorf("no UTKFace test-split faces in %s", images)
	}
	pct := func(k int) string { return fmt.Sprintf("%.2f %%", 100*float64(k)/float64(n)) }
	fmt.Printf("images: %d valid, %d malformed names skipped, test split n = %d, negative age predictions %d, backend %s\n", len(samples), len(skipped), n, negative, b.Name())
	extra := ""
	if batches != "" {
		for _, bs := range strings.Split(batches, ",") {
			var k int
			if _, err := fmt.Sscan(bs, &k); err != nil || k <= 0 {
				return fmt.Errorf("bad batch size %q", bs)
			}
			x := make([]float32, k*len(zero))
			var callErr error
			calls := 0
			var c0 time.Duration
			ms := timing.MsPerCall(secs, func() {
				if calls == 2 { // after MsPerCall's two warm-up calls
					c0 = cpuTime()
				}
				calls++
				if _, _, err := call(x, k); err != nil {
					callErr = err
				}
			})
			if callErr != nil {
				return callErr
			}
			cpuMs := float64((cpuTime() - c0).Microseconds()) / 1000 / float64(calls-2)
			extra += fmt.Sprintf(", b%d %.2f / %.2f", k, ms/float64(k), cpuMs/float64(k))
		}
	}
	fmt.Printf("| face-api age/gender net imported (interop/faceapi), %s | %d | %s | %s | %s | %.2f | %s | b1 %.2f / %.2f%s |\n",
		b.Name(), n, pct(gender), pct(exact), pct(oneOff), absErr/float64(n), pct(cs5), median(wall), median(cpu), extra)
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// cpuTime is the process's user and system CPU time so far (all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
