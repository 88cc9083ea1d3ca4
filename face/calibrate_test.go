package face

import (
	"flag"
	"hash/fnv"
	"math"
	"path/filepath"
	"sort"
	"testing"
)

var calibrate = flag.Int("calibrate", 0, "measure face box and eye positions on this many UTKFace images (e.g. 500) and print the statistics behind the constants in align.go")

// TestCalibrate reproduces the measurements that the UTKFace framing
// constants in align.go come from. It is skipped unless -calibrate=N is
// given:
//
//	go test ./face -run Calibrate -calibrate=500 -v
func TestCalibrate(t *testing.T) {
	if *calibrate <= 0 {
		t.Skip("run with -calibrate=N to measure the UTKFace framing")
	}
	files := utkFiles(t, *calibrate, 21348 / *calibrate)
	d := newTestDetector(t)
	var cx, cy, side, mx, my, ed, eang, score, ratio, lside, led, lgeo []float64
	found, eyes := 0, 0
	for _, f := range files {
		img := loadImage(t, f)
		faces, err := d.Detect(img, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			continue
		}
		found++
		fc := faces[0]
		s := float64(fc.Box.Dx())
		side = append(side, s)
		cx = append(cx, float64(fc.Box.Min.X)+s/2)
		cy = append(cy, float64(fc.Box.Min.Y)+s/2)
		score = append(score, float64(fc.Score))
		if fc.EyesFound {
			eyes++
			// +0.5: an integer pupil position stands for a pixel centre.
			mx = append(mx, float64(fc.LeftEye.X+fc.RightEye.X)/2+0.5)
			my = append(my, float64(fc.LeftEye.Y+fc.RightEye.Y)/2+0.5)
			dd := math.Hypot(float64(fc.RightEye.X-fc.LeftEye.X), float64(fc.RightEye.Y-fc.LeftEye.Y))
			ed = append(ed, dd)
			eang = append(eang, fc.Angle*180/math.Pi)
			ratio = append(ratio, dd/s)
			lside = append(lside, math.Log(s))
			led = append(led, math.Log(dd))
			lgeo = append(lgeo, 0.5*math.Log(s*dd))
		}
	}
	t.Logf("images %d, >=1 face %d (%.1f%%), eyes found %d", len(files), found, 100*float64(found)/float64(len(files)), eyes)
	for _, v := range []struct {
		name string
		x    []float64
	}{{"box centre x", cx}, {"box centre y", cy}, {"box side", side}, {"score", score},
		{"eye mid x", mx}, {"eye mid y", my}, {"eye dist", ed}, {"eye angle deg", eang}, {"eye dist / box side", ratio},
		{"log box side", lside}, {"log eye dist", led}, {"log sqrt(side*dist)", lgeo}} {
		t.Logf("%-20s %s", v.name, stats(v.x))
	}
}

func stats(x []float64) string {
	if len(x) == 0 {
		return "no data"
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	var m, v float64
	for _, a := range s {
		m += a
	}
	m /= float64(len(s))
	for _, a := range s {
		v += (a - m) * (a - m)
	}
	sd := math.Sqrt(v / float64(len(s)))
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1))] }
	return fmtf("mean %7.2f sd %6.2f  p10 %7.2f median %7.2f p90 %7.2f", m, sd, q(0.1), q(0.5), q(0.9))
}

// TestCalibrateBlazeFace measures the mean BlazeFace landmarks on UTKFace
// training images (split by data/sources: FNV-1a-64 of the file name
// % 100 < 80), the utkLandmarks of align.go. Skipped unless -calibrate=N:
//
//	go test ./face -run CalibrateBlazeFace -calibrate=500 -v
func TestCalibrateBlazeFace(t *testing.T) {
	if *calibrate <= 0 {
		t.Skip("run with -calibrate=N to measure the UTKFace landmark framing")
	}
	d := newTestBlazeFace(t)
	var sum [NumLandmarks]Point
	var sq [NumLandmarks]Point
	n, seen := 0, 0
	for _, f := range utkFiles(t, 4**calibrate, 21348/(4**calibrate)) {
		h := fnv.New64a()
		h.Write([]byte(filepath.Base(f)))
		if h.Sum64()%100 >= 80 {
			continue
		}
		if seen++; seen > *calibrate {
			break
		}
		faces, err := d.Detect(loadImage(t, f), BlazeOptions{Upright: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			continue
		}
		n++
		for k, p := range faces[0].Landmarks {
			sum[k].X += p.X
			sum[k].Y += p.Y
			sq[k].X += p.X * p.X
			sq[k].Y += p.Y * p.Y
		}
	}
	t.Logf("training images %d, with a face %d", min(seen, *calibrate), n)
	for k := range sum {
		mx, my := sum[k].X/float64(n), sum[k].Y/float64(n)
		t.Logf("landmark %d: mean (%.1f, %.1f) sd (%.1f, %.1f)", k, mx, my,
			math.Sqrt(sq[k].X/float64(n)-mx*mx), math.Sqrt(sq[k].Y/float64(n)-my*my))
	}
}
