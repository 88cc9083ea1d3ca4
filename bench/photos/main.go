// Command photos is the photo benchmark of the face pipeline: it composes
// scenes from UTKFace test-split faces and measures, for each detector,
// recall, false positives per photo and the gender and age accuracy of the
// whole photo pipeline (detect, align, classify), against the same
// classifier on the same faces given as UTKFace crops (agegender predict
// --crop).
//
//	go run ./bench/photos --scenes 200 --out /tmp/scenes
//
// Each scene is a frame of 640×480 to 1600×1200 pixels whose background is
// a mosaic of patches cut from the corners of UTKFace images (hair, walls,
// clothes: not faces), holding zero (one scene in ten) to four faces. Each
// face is a UTKFace test image (FNV-1a-64 of the file name % 100 ≥ 90)
// scaled so its face is 40–400 pixels wide, rolled by up to ±30°, pasted
// through a soft elliptical mask at a free position. One scene in six is
// then turned by 90° and one in ten by 180°, without EXIF. Scenes are
// written as JPEG (quality 90) with truth.json to --out, which stays out of
// the repository (UTKFace's licence); the same --seed makes the same
// scenes.
//
// A detection matches a true face when its box centre lies within half the
// face size of the true centre and its size is within a factor of two;
// each true face matches at most one detection, best score first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	xdraw "golang.org/x/image/draw"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/imageio"
)

// truthFace is one pasted face, in the coordinates of the final scene.
type truthFace struct {
	File   string  `json:"file"`
	CX     float64 `json:"cx"`
	CY     float64 `json:"cy"`
	Size   float64 `json:"size"` // face width in pixels
	Roll   float64 `json:"roll_deg"`
	Gender string  `json:"gender"`
	Age    string  `json:"age_group"`
}

type scene struct {
	Name  string      `json:"name"`
	Turn  int         `json:"turn_deg"`
	Faces []truthFace `json:"faces"`
}

// faceFill is the share of a UTKFace image's width its face takes (the
// detector box side, 191 of 200 pixels, see face/align.go, less the
// forehead and chin margin BlazeFace leaves out: about 0.75).
const faceFill = 0.75

func main() {
	utkDir := flag.String("utkface", "../shared/data/utkface/images", "UTKFace image `folder`")
	out := flag.String("out", filepath.Join(os.TempDir(), "agegender-scenes"), "`folder` for the generated scenes (outside the repository)")
	n := flag.Int("scenes", 200, "number of scenes")
	seed := flag.Uint64("seed", 1, "random seed of the scenes")
	detectors := flag.String("detectors", "blazeface,pigo", "comma-separated detectors to measure")
	be := flag.String("backend", "", "compute backend: go, onnx or xla")
	minScore := flag.Float64("min-score", 0, "detection score threshold (0: each detector's default)")
	models := flag.String("models", "", "comma-separated joint model `files` to compare, one row each (empty: the built-in model)")
	scale := flag.Float64("scale", 1, "multiply frame and face sizes by this `factor` (3: 2–17 MP frames, faces 120–1200 px: big photos, which builds with -tags libjpeg decode in pieces)")
	var style pasteStyle
	flag.BoolVar(&style.square, "square", false, "paste each face as its whole (rolled) UTKFace square, without the elliptical mask: the face keeps its own surroundings, as in the crops")
	flag.BoolVar(&style.antialias, "antialias", false, "resize each face with an antialiasing filter (Catmull-Rom) before pasting it, instead of nearest-neighbour sampling")
	flag.Parse()
	if *scale < 0.25 || *scale > 8 {
		log.Fatalf("photos: --scale %g: use 0.25 to 8", *scale)
	}

	samples, _, err := utkface.Load(*utkDir)
	if err != nil {
		log.Fatalf("photos: %v (give --utkface the UTKFace images folder)", err)
	}
	var test []data.Sample
	for _, s := range samples {
		h := fnv.New64a()
		h.Write([]byte(filepath.Base(s.Path)))
		if h.Sum64()%100 >= 90 {
			test = append(test, s)
		}
	}
	if len(test) == 0 {
		log.Fatal("photos: no UTKFace test-split images found")
	}
	sort.Slice(test, func(i, j int) bool { return test[i].Path < test[j].Path })
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(*seed, 2))
	var scenes []scene
	for i := range *n {
		sc, img := makeScene(rng, test, samples, fmt.Sprintf("scene%04d.jpg", i), *scale, style)
		f, err := os.Create(filepath.Join(*out, sc.Name))
		if err != nil {
			log.Fatal(err)
		}
		if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
			log.Fatal(err)
		}
		f.Close()
		scenes = append(scenes, sc)
	}
	tj, _ := json.MarshalIndent(scenes, "", " ")
	if err := os.WriteFile(filepath.Join(*out, "truth.json"), tj, 0o644); err != nil {
		log.Fatal(err)
	}
	nfaces := 0
	for _, s := range scenes {
		nfaces += len(s.Faces)
	}
	fmt.Printf("scenes: %d in %s (%d faces; seed %d; scale %g; square %v, antialias %v; JPEG: %s)\n\n", len(scenes), *out, nfaces, *seed, *scale, style.square, style.antialias, imageio.JPEGDecoder)

	fmt.Println("| detector | scenes | faces | recall | recall upright | recall turned | false pos./photo | gender acc. (photo) | gender acc. (crop) | age exact (photo) | age exact (crop) | age 1-off (photo) | s/photo |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, det := range strings.Split(*detectors, ",") {
		for _, m := range strings.Split(*models, ",") {
			a, err := agegender.New(agegender.Options{Backend: *be, Detector: det, MinScore: float32(*minScore), Model: m})
			if err != nil {
				log.Fatal(err)
			}
			r := evaluate(a, scenes, *out, *utkDir)
			a.Close()
			name := det
			if m != "" {
				name += " + " + m
			}
			fmt.Printf("| %s | %d | %d | %.1f%% | %.1f%% | %.1f%% | %.2f | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.2f |\n",
				name, len(scenes), r.faces, pct(r.found, r.faces), pct(r.foundUp, r.facesUp), pct(r.foundTurned, r.facesTurned),
				float64(r.fp)/float64(len(scenes)), pct(r.gender, r.found), pct(r.cropGender, r.found),
				pct(r.age, r.found), pct(r.cropAge, r.found), pct(r.age1, r.found), r.elapsed.Seconds()/float64(len(scenes)))
		}
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

type result struct {
	faces, found, facesUp, foundUp, facesTurned, foundTurned, fp int
	gender, age, age1, cropGender, cropAge                       int
	elapsed                                                      time.Duration
}

// evaluate runs the analyzer on every scene and on the crops of the faces
// it found.
func evaluate(a *agegender.Analyzer, scenes []scene, dir, utkDir string) result {
	var r result
	for _, sc := range scenes {
		b, err := os.ReadFile(filepath.Join(dir, sc.Name))
		if err != nil {
			log.Fatal(err)
		}
		start := time.Now()
		res, err := a.AnalyzeReader(context.Background(), bytes.NewReader(b))
		r.elapsed += time.Since(start)
		if err != nil {
			log.Fatalf("%s: %v", sc.Name, err)
		}
		got := res.Faces
		used := make([]bool, len(got))
		for _, tf := range sc.Faces {
			r.faces++
			if sc.Turn == 0 {
				r.facesUp++
			} else {
				r.facesTurned++
			}
			best := -1
			for i, g := range got {
				if used[i] {
					continue
				}
				cx := float64(g.Box.Min.X+g.Box.Max.X) / 2
				cy := float64(g.Box.Min.Y+g.Box.Max.Y) / 2
				size := float64(max(g.Box.Dx(), g.Box.Dy()))
				if math.Hypot(cx-tf.CX, cy-tf.CY) <= tf.Size/2 && size > tf.Size/2 && size < 2*tf.Size {
					best = i // got is sorted by score: the first match is the best
					break
				}
			}
			if best < 0 {
				continue
			}
			used[best] = true
			r.found++
			if sc.Turn == 0 {
				r.foundUp++
			} else {
				r.foundTurned++
			}
			g := got[best]
			r.gender += b2i(g.Gender.String() == tf.Gender)
			r.age += b2i(g.AgeGroup.String() == tf.Age)
			r.age1 += b2i(ageDist(g.AgeGroup.String(), tf.Age) <= 1)
			crop, _, err := imageio.DecodeFile(filepath.Join(utkDir, tf.File), imageio.Limits{})
			if err != nil {
				log.Fatal(err)
			}
			c, err := a.AnalyzeCrop(context.Background(), crop)
			if err != nil {
				log.Fatal(err)
			}
			r.cropGender += b2i(c.Gender.String() == tf.Gender)
			r.cropAge += b2i(c.AgeGroup.String() == tf.Age)
		}
		for _, u := range used {
			r.fp += b2i(!u)
		}
	}
	return r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ageDist(a, b string) int {
	ga, ea := data.ParseAgeGroup(a)
	gb, eb := data.ParseAgeGroup(b)
	if ea != nil || eb != nil {
		return 99
	}
	return int(math.Abs(float64(ga - gb)))
}

// makeScene composes one scene, its frame and face sizes multiplied by
// scale (the same random draws at every scale).
func makeScene(rng *rand.Rand, test, all []data.Sample, name string, scale float64, style pasteStyle) (scene, *image.RGBA) {
	sizes := [][2]int{{640, 480}, {800, 800}, {1024, 768}, {1280, 960}, {1600, 1200}}
	sz := sizes[rng.IntN(len(sizes))]
	sz = [2]int{int(float64(sz[0]) * scale), int(float64(sz[1]) * scale)}
	if rng.IntN(3) == 0 {
		sz[0], sz[1] = sz[1], sz[0] // portrait
	}
	w, h := sz[0], sz[1]
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	background(rng, img, all, scale)
	sc := scene{Name: name}
	nf := 0
	if rng.IntN(10) != 0 {
		nf = 1 + rng.IntN(4)
	}
	var placed [][3]float64 // cx, cy, radius
	for range nf {
		s := test[rng.IntN(len(test))]
		faceSize := (40 + rng.Float64()*360) * scale
		side := faceSize / faceFill // pasted UTKFace image side
		if side > 0.9*float64(min(w, h)) {
			side = 0.9 * float64(min(w, h))
			faceSize = side * faceFill
		}
		ok := false
		var cx, cy float64
		for range 50 {
			cx = side/2 + rng.Float64()*(float64(w)-side)
			cy = side/2 + rng.Float64()*(float64(h)-side)
			ok = true
			for _, p := range placed {
				if math.Hypot(cx-p[0], cy-p[1]) < (side+p[2])*0.55 {
					ok = false
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			continue
		}
		src, _, err := imageio.DecodeFile(s.Path, imageio.Limits{})
		if err != nil {
			log.Fatal(err)
		}
		roll := (rng.Float64()*2 - 1) * 30
		paste(img, src, cx, cy, side, roll*math.Pi/180, style)
		placed = append(placed, [3]float64{cx, cy, side})
		sc.Faces = append(sc.Faces, truthFace{File: filepath.Base(s.Path), CX: cx, CY: cy, Size: faceSize, Roll: roll,
			Gender: s.Gender.String(), Age: s.AgeGroup.String()})
	}
	out := img
	switch r := rng.IntN(30); {
	case r < 5:
		sc.Turn = 90
	case r < 8:
		sc.Turn = 180
	}
	if sc.Turn != 0 {
		out = turn(img, sc.Turn/90)
		for i := range sc.Faces {
			f := &sc.Faces[i]
			if sc.Turn == 90 { // clockwise: (x, y) → (h - y, x)
				f.CX, f.CY = float64(h)-f.CY, f.CX
			} else {
				f.CX, f.CY = float64(w)-f.CX, float64(h)-f.CY
			}
		}
	}
	return sc, out
}

// background fills img with a mosaic of 40×40 corner patches of UTKFace
// images, each scaled up by 2 to 4 (times scale).
func background(rng *rand.Rand, img *image.RGBA, all []data.Sample, scale float64) {
	b := img.Bounds()
	for y := 0; y < b.Dy(); {
		rowH := int(float64(80+rng.IntN(80)) * scale)
		for x := 0; x < b.Dx(); {
			s := all[rng.IntN(len(all))]
			src, _, err := imageio.DecodeFile(s.Path, imageio.Limits{})
			if err != nil {
				continue
			}
			sb := src.Bounds()
			corner := [4]image.Point{{0, 0}, {sb.Dx() - 40, 0}, {0, sb.Dy() - 40}, {sb.Dx() - 40, sb.Dy() - 40}}[rng.IntN(4)]
			tileW := int(float64(80+rng.IntN(80)) * scale)
			for v := 0; v < rowH && y+v < b.Dy(); v++ {
				for u := 0; u < tileW && x+u < b.Dx(); u++ {
					img.Set(x+u, y+v, src.At(sb.Min.X+corner.X+u*40/tileW, sb.Min.Y+corner.Y+v*40/rowH))
				}
			}
			x += tileW
		}
		y += rowH
	}
}

// pasteStyle is how faces are pasted into scenes; the zero value is the
// benchmark's default (the tables in BENCHMARKS.md), the others measure
// what the scenes themselves cost the pipeline.
type pasteStyle struct {
	square    bool // the whole UTKFace square, no elliptical mask
	antialias bool // resized with Catmull-Rom first, not sampled nearest
}

// paste draws src scaled to side×side, rotated by roll (radians,
// clockwise as displayed), centred at (cx, cy), through an elliptical mask
// with a soft edge (or, with style.square, whole).
func paste(dst *image.RGBA, src image.Image, cx, cy, side, roll float64, style pasteStyle) {
	if style.antialias {
		n := max(1, int(math.Round(side)))
		small := image.NewRGBA(image.Rect(0, 0, n, n))
		xdraw.CatmullRom.Scale(small, small.Bounds(), src, src.Bounds(), xdraw.Src, nil)
		src = small
	}
	sb := src.Bounds()
	k := float64(sb.Dx()) / side
	sin, cos := math.Sincos(roll)
	r := int(side*0.75) + 2
	for y := int(cy) - r; y <= int(cy)+r; y++ {
		for x := int(cx) - r; x <= int(cx)+r; x++ {
			if !(image.Point{x, y}).In(dst.Bounds()) {
				continue
			}
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			u := cos*dx + sin*dy // de-rotate into the face frame
			v := -sin*dx + cos*dy
			e := math.Hypot(u/(0.46*side), v/(0.5*side))
			if style.square {
				e = 0
				if math.Abs(u) >= side/2 || math.Abs(v) >= side/2 {
					e = 1
				}
			}
			if e >= 1 {
				continue
			}
			alpha := math.Min(1, (1-e)/0.12)
			sx, sy := (u+side/2)*k, (v+side/2)*k
			c := src.At(sb.Min.X+min(max(int(sx), 0), sb.Dx()-1), sb.Min.Y+min(max(int(sy), 0), sb.Dy()-1))
			cr, cg, cb, _ := c.RGBA()
			o := dst.RGBAAt(x, y)
			mix := func(a uint32, b uint8) uint8 { return uint8(alpha*float64(a>>8) + (1-alpha)*float64(b) + 0.5) }
			dst.SetRGBA(x, y, color.RGBA{mix(cr, o.R), mix(cg, o.G), mix(cb, o.B), 255})
		}
	}
}

// turn rotates img clockwise by quarter turns.
func turn(img *image.RGBA, q int) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var out *image.RGBA
	if q%2 == 1 {
		out = image.NewRGBA(image.Rect(0, 0, h, w))
	} else {
		out = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	for y := range h {
		for x := range w {
			c := img.RGBAAt(x, y)
			switch q {
			case 1:
				out.SetRGBA(h-1-y, x, c)
			case 2:
				out.SetRGBA(w-1-x, h-1-y, c)
			}
		}
	}
	return out
}
