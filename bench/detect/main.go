// Command detect times face detection in a warm process, decode included:
// the one-face sample photo (testdata/face.jpg) placed in frames of
// 448×448, 1 and 12 megapixels and encoded as JPEG (quality 90); each is
// decoded (imageio.Decode, as agegender does) and searched with each
// detector, --runs times after one warm-up call. It prints p50 and p90 of
// the wall time in milliseconds, the p50 of the processor time the process
// used (all threads; less disturbed than the wall time when the machine is
// shared) and the faces found.
//
//	go run ./bench/detect --backend go --runs 20
//
// See bench/detect.sh, which also times whole `agegender predict` processes
// and the Node peer.
//
// With --floor DIR (ONNX Runtime build) it times one run of each
// BlazeFace network instead: the native ONNX export of the network in DIR
// against the graph face runs, the floor for the latter:
//
//	CGO_ENABLED=1 go run -tags onnx ./bench/detect --backend onnx --floor ../shared/models/onnx
//
// With --scenes DIR it measures instead BlazeFace's recall, false positives
// and time per photo with and without tiles (BlazeOptions.Tiles) on the
// scenes that bench/photos wrote to DIR:
//
//	go run ./bench/photos --scenes 80 --detectors blazeface --out /tmp/scenes80
//	go run ./bench/detect --backend onnx --scenes /tmp/scenes80
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"log"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
	xdraw "golang.org/x/image/draw"
)

func main() {
	be := flag.String("backend", "", "compute backend: go, onnx or xla")
	runs := flag.Int("runs", 20, "timed runs per photo size")
	detectors := flag.String("detectors", "blazeface,pigo", "comma-separated detectors")
	sample := flag.String("photo", "testdata/face.jpg", "one-face `photo` to place in the frames")
	write := flag.String("write", "", "also write the frames as JPEG into this `folder` (for the Node peer)")
	floorDir := flag.String("floor", "", "instead, time each BlazeFace network's run on ONNX Runtime: the native ONNX export in this `folder` (../shared/models/onnx) against face's graph")
	scenesDir := flag.String("scenes", "", "instead, measure BlazeFace's recall and time per photo with and without tiles on the scenes bench/photos wrote to this `folder`")
	flag.Parse()

	src, _, err := imageio.DecodeFile(*sample, imageio.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	b, err := backend.Open(*be)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Finalize()
	if *floorDir != "" {
		if err := floor(b, *floorDir, *runs); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *scenesDir != "" {
		bf, err := face.NewBlazeFace(b)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("backend: %s; scenes of %s\n\n", backend.Describe(b), *scenesDir)
		scenes(bf, *scenesDir)
		return
	}
	sizes := []struct {
		name string
		w, h int
	}{{"448x448", 448, 448}, {"1MP", 1152, 864}, {"12MP", 4000, 3000}}
	frames := make([][]byte, len(sizes))
	for i, s := range sizes {
		frames[i] = frame(src, s.w, s.h)
		if *write != "" {
			if err := os.WriteFile(fmt.Sprintf("%s/%s.jpg", *write, s.name), frames[i], 0o644); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Printf("backend: %s; %d runs per size after one warm-up; decode + detect, milliseconds\n\n", backend.Describe(b), *runs)
	fmt.Println("| detector | photo | JPEG KiB | p50 ms | p90 ms | decode p50 ms | CPU p50 ms | faces |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|")
	for _, name := range strings.Split(*detectors, ",") {
		f, err := face.NewFinder(name, b, 0, face.DefaultOptions())
		if err != nil {
			log.Fatal(err)
		}
		for i, s := range sizes {
			var total, dec, cpu []time.Duration
			n := 0
			for r := range *runs + 1 {
				start, cpu0 := time.Now(), cpuTime()
				img, _, err := imageio.Decode(bytes.NewReader(frames[i]), imageio.Limits{})
				if err != nil {
					log.Fatal(err)
				}
				mid := time.Now()
				faces, err := f.Find(img)
				if err != nil {
					log.Fatal(err)
				}
				if r == 0 {
					continue // warm-up: compiles the graphs for this batch size
				}
				total = append(total, time.Since(start))
				cpu = append(cpu, cpuTime()-cpu0)
				dec = append(dec, mid.Sub(start))
				n = len(faces)
			}
			fmt.Printf("| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %d |\n", name, s.name, len(frames[i])>>10,
				ms(pct(total, 50)), ms(pct(total, 90)), ms(pct(dec, 50)), ms(pct(cpu, 50)), n)
		}
	}
}

// frame places the photo, scaled to 40% of the frame's height, on a
// textured grey background and encodes it as JPEG.
func frame(src image.Image, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(100 + (x*7+y*13)%40)
			img.SetRGBA(x, y, color.RGBA{v, v + 10, v + 20, 255})
		}
	}
	sb := src.Bounds()
	fh := 4 * h / 10
	fw := fh * sb.Dx() / sb.Dy()
	r := image.Rect(w/3, h/4, w/3+fw, h/4+fh)
	xdraw.CatmullRom.Scale(img, r, src, sb, draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}

// cpuTime is the processor time (user and system, all threads) this
// process has used: on a machine shared with other jobs it varies less
// than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
