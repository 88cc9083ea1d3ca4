package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
)

// truthScene is a scene of bench/photos as its truth.json describes it.
type truthScene struct {
	Name  string `json:"name"`
	Turn  int    `json:"turn_deg"`
	Faces []struct {
		CX, CY, Size float64
	} `json:"faces"`
}

// scenes measures BlazeFace alone on the scenes bench/photos wrote to dir
// (its truth.json): recall, false positives per photo and the time per
// photo (decode and detect), with and without tiles. A detection matches
// a true face as in bench/photos: centre within half the face size, size
// within a factor of two, one detection per face, best score first.
func scenes(bf *face.BlazeFace, dir string) {
	tj, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		log.Fatalf("%v (make the scenes with: go run ./bench/photos --out %s)", err, dir)
	}
	var scs []truthScene
	if err := json.Unmarshal(tj, &scs); err != nil {
		log.Fatal(err)
	}
	fmt.Println("| options | scenes | faces | recall | recall upright | recall turned | faces < 1/12 of the photo found | false pos./photo | ms/photo (p50) | CPU ms/photo (mean) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, v := range []struct {
		name string
		opt  face.BlazeOptions
	}{{"default", face.BlazeOptions{}}, {"Tiles", face.BlazeOptions{Tiles: true}}} {
		var faces, found, up, foundUp, small, foundSmall, fp int
		var times []time.Duration
		var cpu time.Duration
		for _, sc := range scs {
			b, err := os.ReadFile(filepath.Join(dir, sc.Name))
			if err != nil {
				log.Fatal(err)
			}
			start, cpu0 := time.Now(), cpuTime()
			img, _, err := imageio.Decode(bytes.NewReader(b), imageio.Limits{})
			if err != nil {
				log.Fatal(err)
			}
			got, err := bf.Detect(img, v.opt)
			if err != nil {
				log.Fatal(err)
			}
			times = append(times, time.Since(start))
			cpu += cpuTime() - cpu0
			long := float64(max(img.Bounds().Dx(), img.Bounds().Dy()))
			used := make([]bool, len(got))
			for _, tf := range sc.Faces {
				faces++
				isSmall := tf.Size < long/12
				if sc.Turn == 0 {
					up++
				}
				if isSmall {
					small++
				}
				for i, g := range got {
					cx := float64(g.Box.Min.X+g.Box.Max.X) / 2
					cy := float64(g.Box.Min.Y+g.Box.Max.Y) / 2
					size := float64(max(g.Box.Dx(), g.Box.Dy()))
					if !used[i] && math.Hypot(cx-tf.CX, cy-tf.CY) <= tf.Size/2 && size > tf.Size/2 && size < 2*tf.Size {
						used[i] = true
						found++
						if sc.Turn == 0 {
							foundUp++
						}
						if isSmall {
							foundSmall++
						}
						break
					}
				}
			}
			for _, u := range used {
				if !u {
					fp++
				}
			}
		}
		n := len(scs)
		fmt.Printf("| %s | %d | %d | %.1f%% | %.1f%% | %.1f%% | %d of %d | %.2f | %.1f | %.1f |\n", v.name, n, faces,
			pctOf(found, faces), pctOf(foundUp, up), pctOf(found-foundUp, faces-up), foundSmall, small,
			float64(fp)/float64(n), ms(pct(times, 50)), ms(cpu)/float64(n))
	}
}

func pctOf(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
