package face

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// TestDetectUTKFace checks the detector on the images the classifier is
// trained on: the first 50 of the sorted UTKFace listing.
func TestDetectUTKFace(t *testing.T) {
	files := utkFiles(t, 50, 1)
	d := newTestDetector(t)
	found, one, eyes := 0, 0, 0
	for _, f := range files {
		faces, err := d.Detect(loadImage(t, f), DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) >= 1 {
			found++
			if faces[0].EyesFound {
				eyes++
			}
		}
		if len(faces) == 1 {
			one++
		}
	}
	rate := float64(found) / float64(len(files))
	t.Logf("UTKFace detection: %d/%d images with a face (%.0f%%), %d with exactly one, %d with eyes",
		found, len(files), 100*rate, one, eyes)
	if rate < 0.85 {
		t.Errorf("face found in %.0f%% of UTKFace images, want at least 85%%", 100*rate)
	}
	if one < found*9/10 {
		t.Errorf("exactly one face in only %d of %d images with a face", one, found)
	}
}

// TestAlignUTKFaceIdentity checks the calibration: aligning a UTKFace image
// must give back nearly the image itself.
func TestAlignUTKFaceIdentity(t *testing.T) {
	files := utkFiles(t, 50, 1)
	d := newTestDetector(t)
	var sum float64
	n := 0
	for _, f := range files {
		img := loadImage(t, f)
		faces, err := d.Detect(img, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			continue
		}
		sum += meanAbsDiff64(Align(img, faces[0], 200), img)
		n++
	}
	if n == 0 {
		t.Fatal("no faces found")
	}
	mad := sum / float64(n)
	t.Logf("Align on %d UTKFace images vs the images themselves: mean abs diff %.1f (0..255, at 64×64)", n, mad)
	if mad > 20 {
		t.Errorf("aligned UTKFace images differ from the originals by %.1f on average, want <= 20", mad)
	}
}

// testFace returns a UTKFace image of a 30-year-old on which the detector
// finds one level face with both eyes, together with that face; skip skips
// that many suitable images. The synthetic tests paste it into larger
// canvases. (The first images of the listing are of centenarians, often
// smiling with narrowed eyes, on which the pupil cascade is unreliable once
// the face is tilted; see the package documentation.)
func testFace(t *testing.T, d *Detector, skip int) (image.Image, Face) {
	t.Helper()
	dir := utkDir(t)
	names, err := filepath.Glob(filepath.Join(dir, "30_*.jpg"))
	if err != nil || len(names) == 0 {
		datatest.Missing(t, "UTKFace images not found in %s", dir)
	}
	sort.Strings(names)
	for _, f := range names[:min(len(names), 50)] {
		img := loadImage(t, f)
		faces, err := d.Detect(img, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 1 && faces[0].EyesFound && math.Abs(faces[0].Angle) < 3*math.Pi/180 {
			if skip > 0 {
				skip--
				continue
			}
			t.Logf("test face %d: %s", skip, filepath.Base(f))
			return img, faces[0]
		}
	}
	t.Fatal("no UTKFace image with a level face found")
	return nil, Face{}
}

// paste draws src onto dst, scaled by scale, rotated clockwise (as
// displayed) by deg degrees about its centre, with its centre at (cx, cy).
// It returns the map from src to dst coordinates.
func paste(dst draw.Image, src image.Image, cx, cy, scale, deg float64) func(x, y float64) (float64, float64) {
	sin, cos := math.Sincos(deg * math.Pi / 180)
	b := src.Bounds()
	hx, hy := float64(b.Dx())/2, float64(b.Dy())/2
	// dst = c + scale·R·(src − h)
	a := f64.Aff3{
		scale * cos, -scale * sin, cx - scale*(cos*hx-sin*hy),
		scale * sin, scale * cos, cy - scale*(sin*hx+cos*hy),
	}
	draw.BiLinear.Transform(dst, a, src, b, draw.Over, nil)
	return func(x, y float64) (float64, float64) {
		return a[0]*x + a[1]*y + a[2], a[3]*x + a[4]*y + a[5]
	}
}

func greyCanvas(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(m, m.Bounds(), image.NewUniform(color.Gray{128}), image.Point{}, draw.Src)
	return m
}

func noiseCanvas(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		v := uint8(96 + r.IntN(64))
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = v, v, v, 255
	}
	return m
}

// TestSyntheticCanvas pastes a real face, scaled and rotated, off-centre
// into a larger picture, and checks that Detect finds it where it was put,
// with the right roll angle, and that Align recovers the original framing.
func TestSyntheticCanvas(t *testing.T) {
	d := newTestDetector(t)
	src, orig := testFace(t, d, 0)
	cases := []struct {
		name          string
		canvas        *image.RGBA
		cx, cy, scale float64
		deg           float64
	}{
		{"grey rotated +12", greyCanvas(640, 480), 420, 220, 1, 12},
		{"noise scaled 1.5 rotated -15", noiseCanvas(640, 480, 7), 250, 250, 1.5, -15},
		{"grey scaled 1.5 rotated +10", greyCanvas(640, 480), 400, 260, 1.5, 10},
		{"noise upright", noiseCanvas(640, 480, 3), 160, 300, 1, 0},
	}
	want := resize64(src)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toCanvas := paste(c.canvas, src, c.cx, c.cy, c.scale, c.deg)
			faces, err := d.Detect(c.canvas, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != 1 {
				t.Fatalf("found %d faces, want 1: %+v", len(faces), faces)
			}
			f := faces[0]

			// The box should be where the box found on the original lands.
			os := float64(orig.Box.Dx())
			ex, ey := toCanvas(float64(orig.Box.Min.X)+os/2, float64(orig.Box.Min.Y)+os/2)
			side := float64(f.Box.Dx())
			gx := float64(f.Box.Min.X) + side/2
			gy := float64(f.Box.Min.Y) + side/2
			wantSide := os * c.scale
			t.Logf("box %v (centre %.0f,%.0f side %.0f), expected centre %.0f,%.0f side %.0f; eyes %v %v angle %.1f°",
				f.Box, gx, gy, side, ex, ey, wantSide, f.LeftEye, f.RightEye, f.Angle*180/math.Pi)
			if off := math.Hypot(gx-ex, gy-ey); off > 0.15*wantSide {
				t.Errorf("box centre is %.0f px from where the face was pasted, want <= %.0f", off, 0.15*wantSide)
			}
			if r := side / wantSide; r < 0.75 || r > 1.33 {
				t.Errorf("box side %.0f, want about %.0f", side, wantSide)
			}

			if !f.EyesFound {
				t.Fatal("eyes not found")
			}
			if diff := f.Angle*180/math.Pi - c.deg; math.Abs(diff) > 4 {
				t.Errorf("eye angle %.1f°, face was rotated by %.1f°", f.Angle*180/math.Pi, c.deg)
			}

			// The pasted image has the same framing as the original, so
			// Align should give back about the original. Align on the
			// original UTKFace images themselves averages a difference of
			// about 17 (TestAlignUTKFaceIdentity: the box size varies by
			// about 9% between faces); two different people framed alike
			// differ by about 61 (TestAlignThresholdBaseline). 25 leaves
			// room for the resampling of the paste yet fails a crop that
			// is off by a quarter of the face.
			got := Align(c.canvas, f, 64)
			mad := meanAbsDiff(resize64(got), want)
			t.Logf("Align vs original: mean abs diff %.1f", mad)
			if mad >= 25 {
				t.Errorf("aligned crop differs from the original face by %.1f (0..255), want < 25", mad)
			}
		})
	}
}

// TestAlignThresholdBaseline measures what the threshold in
// TestSyntheticCanvas is compared with: the difference between different
// people's UTKFace images, which all share one framing.
func TestAlignThresholdBaseline(t *testing.T) {
	files := utkFiles(t, 20, 1)
	var sum float64
	n := 0
	for i := 1; i < len(files); i++ {
		sum += meanAbsDiff(resize64(loadImage(t, files[i-1])), resize64(loadImage(t, files[i])))
		n++
	}
	mad := sum / float64(n)
	t.Logf("different UTKFace faces: mean abs diff %.1f", mad)
	if mad < 25 {
		t.Errorf("different faces differ by only %.1f; the alignment threshold of 25 would not tell failure from success", mad)
	}
}

func TestTwoFaces(t *testing.T) {
	d := newTestDetector(t)
	a, _ := testFace(t, d, 0)
	b, _ := testFace(t, d, 1)
	canvas := greyCanvas(640, 480)
	paste(canvas, a, 170, 240, 1, 0)
	paste(canvas, b, 470, 240, 1, 0)

	faces, err := d.Detect(canvas, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(faces) != 2 {
		t.Fatalf("found %d faces, want 2: %+v", len(faces), faces)
	}
	if faces[0].Score < faces[1].Score {
		t.Errorf("faces not sorted by score: %v then %v", faces[0].Score, faces[1].Score)
	}
	if faces[0].Box.Overlaps(faces[1].Box) {
		t.Errorf("the two boxes overlap: %v %v", faces[0].Box, faces[1].Box)
	}
	crops := Crops(canvas, faces, 64)
	if len(crops) != 2 || crops[0].Bounds() != image.Rect(0, 0, 64, 64) {
		t.Errorf("Crops returned %d crops", len(crops))
	}

	opt := DefaultOptions()
	opt.MaxFaces = 1
	one, err := d.Detect(canvas, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 {
		t.Fatalf("MaxFaces=1: found %d faces", len(one))
	}
	if one[0].Box != faces[0].Box {
		t.Errorf("MaxFaces=1 kept %v, want the best scoring %v", one[0].Box, faces[0].Box)
	}
}

// TestBoundsOffset checks that faces are reported in the coordinates of an
// image whose bounds do not start at (0, 0).
func TestBoundsOffset(t *testing.T) {
	d := newTestDetector(t)
	src, _ := testFace(t, d, 0)
	canvas := greyCanvas(640, 480)
	paste(canvas, src, 400, 260, 1, 0)
	full, err := d.Detect(canvas, DefaultOptions())
	if err != nil || len(full) != 1 {
		t.Fatalf("full canvas: %v faces, err %v", len(full), err)
	}
	sub := canvas.SubImage(image.Rect(200, 40, 640, 480))
	part, err := d.Detect(sub, DefaultOptions())
	if err != nil || len(part) != 1 {
		t.Fatalf("sub-image: %v faces, err %v", len(part), err)
	}
	// The scan grid depends on the image size, so allow a few pixels.
	fb, pb := full[0].Box, part[0].Box
	if d := pb.Min.Sub(fb.Min); abs(d.X) > fb.Dx()/20 || abs(d.Y) > fb.Dx()/20 || abs(pb.Dx()-fb.Dx()) > fb.Dx()/10 {
		t.Errorf("sub-image box %v, full-image box %v", pb, fb)
	}
	if mad := meanAbsDiff(resize64(Align(sub, part[0], 64)), resize64(Align(canvas, full[0], 64))); mad > 10 {
		t.Errorf("Align on the sub-image differs from Align on the full image by %.1f", mad)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestNoFaces(t *testing.T) {
	d := newTestDetector(t)
	for _, img := range []image.Image{
		greyCanvas(640, 480),
		image.NewGray(image.Rect(0, 0, 1, 1)),
		image.NewRGBA(image.Rect(0, 0, 0, 0)),
		image.NewNRGBA(image.Rect(5, 5, 45, 45)),
	} {
		faces, err := d.Detect(img, DefaultOptions())
		if err != nil || len(faces) != 0 {
			t.Errorf("%T %v: %d faces, err %v; want none", img, img.Bounds(), len(faces), err)
		}
	}
	// Align must not panic on degenerate input either.
	Align(image.NewGray(image.Rect(0, 0, 1, 1)), Face{Box: image.Rect(0, 0, 1, 1)}, 8)
	Align(image.NewRGBA(image.Rect(0, 0, 0, 0)), Face{}, 8)
}

func TestOptions(t *testing.T) {
	d := newTestDetector(t)
	img := greyCanvas(64, 64)
	if _, err := d.Detect(img, Options{}); err != nil {
		t.Errorf("zero Options should mean defaults, got %v", err)
	}
	for _, o := range []Options{
		{MinSize: 2},
		{ShiftFactor: 2},
		{ScaleFactor: 0.5},
		{IoUThreshold: 1.5},
		{MaxFaces: -1},
		{MinSize: 100, MaxSize: 50},
		{MinScore: float32(math.NaN())},
	} {
		if _, err := d.Detect(img, o); err == nil {
			t.Errorf("Detect accepted invalid %+v", o)
		}
	}
	var nilDet *Detector
	if _, err := nilDet.Detect(img, DefaultOptions()); err == nil {
		t.Error("nil Detector: want an error")
	}
	if _, err := d.Detect(nil, DefaultOptions()); err == nil {
		t.Error("nil image: want an error")
	}
}

// TestConcurrentDetect runs one Detector from several goroutines; run it
// with -race to check the claim that Detector is safe for concurrent use.
func TestConcurrentDetect(t *testing.T) {
	d := newTestDetector(t)
	src, _ := testFace(t, d, 0)
	canvas := greyCanvas(320, 320)
	paste(canvas, src, 160, 160, 1, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			faces, err := d.Detect(canvas, DefaultOptions())
			if err != nil || len(faces) != 1 {
				t.Errorf("concurrent Detect: %d faces, err %v", len(faces), err)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDetect(b *testing.B) {
	d := newTestDetector(b)
	canvas := noiseCanvas(640, 480, 1)
	for i, f := range utkFiles(b, 2, 1) {
		paste(canvas, loadImage(b, f), float64(170+300*i), 240, 1, 0)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Detect(canvas, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAlign(b *testing.B) {
	d := newTestDetector(b)
	img := loadImage(b, utkFiles(b, 1, 1)[0])
	faces, err := d.Detect(img, DefaultOptions())
	if err != nil || len(faces) == 0 {
		b.Skip("no face in the first UTKFace image")
	}
	for b.Loop() {
		Align(img, faces[0], 200)
	}
}

// resize64 scales img to 64×64 with bilinear filtering.
func resize64(img image.Image) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, 64, 64))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}

// meanAbsDiff64 resizes both images to 64×64 and compares them.
func meanAbsDiff64(a, b image.Image) float64 {
	return meanAbsDiff(resize64(a), resize64(b))
}

// meanAbsDiff is the mean absolute difference of the R, G and B channels of
// two equally sized images, on the 0..255 scale.
func meanAbsDiff(a, b *image.RGBA) float64 {
	var sum float64
	n := 0
	for i := 0; i < len(a.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			sum += math.Abs(float64(a.Pix[i+c]) - float64(b.Pix[i+c]))
			n++
		}
	}
	return sum / float64(n)
}
