package agegender_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/internal/testmodel"
	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// ctx is the context of calls that are not about cancellation.
var ctx = context.Background()

// newAnalyzer returns an Analyzer on the random-weight test models (the
// trained built-in models are not needed to test the plumbing).
func newAnalyzer(t testing.TB, opts agegender.Options) *agegender.Analyzer {
	t.Helper()
	g, a, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.GenderModel, opts.AgeModel = g, a
	an, err := agegender.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { an.Close() })
	return an
}

// utkDir is the shared UTKFace folder (the test skips if it is absent).
func utkDir(t testing.TB) string { return datatest.SharedDir(t, "utkface/images") }

// levelFace returns a UTKFace crop in which the detector finds exactly one
// face with both eyes and level eyes, so that pasting it rotated is a
// clean test of the alignment.
func levelFace(t testing.TB, skip int) (string, image.Image) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(utkDir(t), "30_*.jpg"))
	sort.Strings(names)
	d, err := face.NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range names[:min(len(names), 60)] {
		img, _, err := imageio.DecodeFile(f, imageio.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := d.Detect(img, face.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 1 && fs[0].EyesFound && math.Abs(fs[0].Angle) < 3*math.Pi/180 {
			if skip > 0 {
				skip--
				continue
			}
			return f, img
		}
	}
	t.Fatal("no UTKFace image with a single level face among the first 60 of age 30")
	return "", nil
}

// paste draws src onto dst rotated clockwise (as displayed) by deg degrees
// about its centre, with its centre at (cx, cy).
func paste(dst draw.Image, src image.Image, cx, cy, deg float64) {
	sin, cos := math.Sincos(deg * math.Pi / 180)
	b := src.Bounds()
	hx, hy := float64(b.Dx())/2, float64(b.Dy())/2
	a := f64.Aff3{
		cos, -sin, cx - (cos*hx - sin*hy),
		sin, cos, cy - (sin*hx + cos*hy),
	}
	draw.BiLinear.Transform(dst, a, src, b, draw.Over, nil)
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

// meanAbsDiff64 is the mean absolute RGB difference (0..255) of two images
// both scaled to 64×64.
func meanAbsDiff64(a, b image.Image) float64 {
	r := func(img image.Image) *image.RGBA {
		dst := image.NewRGBA(image.Rect(0, 0, 64, 64))
		draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
		return dst
	}
	x, y := r(a), r(b)
	var sum float64
	for i := 0; i < len(x.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			sum += math.Abs(float64(x.Pix[i+c]) - float64(y.Pix[i+c]))
		}
	}
	return sum / float64(64*64*3)
}

// maxProbDiff is the largest difference between the probabilities two
// faces give to the same class, over gender and age.
func maxProbDiff(a, b agegender.Face) float64 {
	d := 0.0
	pg := func(f agegender.Face, g agegender.Gender) float64 {
		if f.Gender == g {
			return float64(f.GenderProb)
		}
		return 1 - float64(f.GenderProb) // two classes
	}
	for _, g := range []agegender.Gender{a.Gender, b.Gender} {
		d = math.Max(d, math.Abs(pg(a, g)-pg(b, g)))
	}
	for k, p := range a.AgeProbs {
		d = math.Max(d, math.Abs(float64(p-b.AgeProbs[k])))
	}
	return d
}

// TestPastedFaceMatchesCrop pastes a real UTKFace crop, shifted and rotated
// by 10°, into a larger noisy picture. Analyze must find it where it was
// put, align it back to about the original framing, and so give about the
// probabilities AnalyzeCrop gives on the original crop.
func TestPastedFaceMatchesCrop(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{})
	file, crop := levelFace(t, 0)
	t.Logf("face: %s", filepath.Base(file))
	want, err := a.AnalyzeCrop(ctx, crop)
	if err != nil {
		t.Fatal(err)
	}
	if want.Box != crop.Bounds() || want.Index != 0 || want.DetectionScore != 0 {
		t.Errorf("AnalyzeCrop: box %v index %d score %g; want the image bounds, 0 and 0", want.Box, want.Index, want.DetectionScore)
	}

	canvas := noiseCanvas(640, 480, 7)
	const cx, cy, deg = 400, 260, 10
	paste(canvas, crop, cx, cy, deg)
	faces, err := a.Analyze(ctx, canvas)
	if err != nil {
		t.Fatal(err)
	}
	if len(faces) != 1 {
		t.Fatalf("Analyze found %d faces, want 1: %+v", len(faces), faces)
	}
	got := faces[0]
	c := got.Box.Min.Add(got.Box.Max).Div(2)
	t.Logf("box %v, score %.1f", got.Box, got.DetectionScore)
	// UTKFace faces sit a little above the frame centre (face/align.go:
	// box centre at (95.6, 77.4) of 200): allow a quarter of the side.
	if off := math.Hypot(float64(c.X-cx), float64(c.Y-cy)); off > 50 {
		t.Errorf("box centre %v is %.0f px from where the face was pasted (%d,%d)", c, off, cx, cy)
	}

	// The same alignment Analyze does: it must give back about the
	// original crop (face.TestSyntheticCanvas explains the threshold of
	// 25: different people framed alike differ by about 61).
	d, _ := face.NewDetector()
	dets, _ := d.Detect(canvas, face.DefaultOptions())
	if len(dets) != 1 {
		t.Fatalf("detector found %d faces", len(dets))
	}
	mad := meanAbsDiff64(face.Align(canvas, dets[0], 200), crop)
	t.Logf("aligned crop vs original: mean abs diff %.1f", mad)
	if mad >= 25 {
		t.Errorf("aligned crop differs from the original by %.1f (0..255), want < 25", mad)
	}

	// The probabilities. The test networks have random weights, whose
	// outputs vary little from one input to another, so an absolute bound
	// alone (|Δp| < 0.15, what a trained model should meet) says little.
	// The test also asks that the pasted face be at least 2 times closer
	// to the original than another person's face is: the alignment must
	// make the difference smaller than a change of identity.
	diff := maxProbDiff(got, want)
	t.Logf("pasted:   %s %.3f %s %v", got.Gender, got.GenderProb, got.AgeGroup, got.AgeProbs)
	t.Logf("original: %s %.3f %s %v", want.Gender, want.GenderProb, want.AgeGroup, want.AgeProbs)
	_, otherImg := levelFace(t, 1)
	other, err := a.AnalyzeCrop(ctx, otherImg)
	if err != nil {
		t.Fatal(err)
	}
	base := maxProbDiff(other, want)
	t.Logf("max |Δp|: pasted vs original %.4f; another person vs original %.4f", diff, base)
	if diff >= 0.15 {
		t.Errorf("probabilities on the pasted face differ from the crop's by up to %.3f, want < 0.15", diff)
	}
	if diff >= base/2 {
		t.Errorf("pasted face differs from the original by %.4f, not 2 times less than another person (%.4f)", diff, base)
	}
}

// TestConcurrentBatching checks that faces batched together from
// concurrent calls get the same answers as calls made one at a time.
func TestConcurrentBatching(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{MaxBatch: 4})
	var crops []image.Image
	for i := range 6 {
		img := noiseCanvas(120, 120, uint64(i))
		// Give each a distinct gradient so that answers differ.
		for y := 0; y < 120; y++ {
			for x := 0; x < 120; x++ {
				o := img.PixOffset(x, y)
				img.Pix[o] = uint8(x * (i + 1) % 256)
			}
		}
		crops = append(crops, img)
	}
	want := make([]agegender.Face, len(crops))
	for i, c := range crops {
		f, err := a.AnalyzeCrop(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = f
	}
	var wg sync.WaitGroup
	got := make([]agegender.Face, 3*len(crops))
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() { got[i], errs[i] = a.AnalyzeCrop(ctx, crops[i%len(crops)]) })
	}
	wg.Wait()
	for i, f := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if d := maxProbDiff(f, want[i%len(crops)]); d > 1e-4 {
			t.Errorf("call %d: probabilities differ by %g from the sequential call", i, d)
		}
	}
}

func TestNoFaceAndBadInput(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{})
	faces, err := a.Analyze(ctx, noiseCanvas(300, 200, 1))
	if err != nil || faces == nil || len(faces) != 0 {
		t.Errorf("noise: got %v, %v; want an empty, non-nil slice and no error", faces, err)
	}
	if _, err := a.AnalyzeReader(ctx, strings.NewReader("not an image")); err == nil {
		t.Error("AnalyzeReader accepted garbage")
	}
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3000, 3000)))
	refuse := newAnalyzer(t, agegender.Options{Limits: imageio.Limits{MaxPixels: 1000, MaxDecodeBytes: -1}})
	if _, err := refuse.AnalyzeReader(ctx, bytes.NewReader(buf.Bytes())); !errors.Is(err, agegender.ErrTooLarge) {
		t.Errorf("AnalyzeReader of a 9 Mpx image with a 1000 px limit and no downscaling: %v, want ErrTooLarge", err)
	}
	small := newAnalyzer(t, agegender.Options{Limits: imageio.Limits{MaxPixels: 1000}})
	res, err := small.AnalyzeReader(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil || res.Width != 3000 || res.Height != 3000 || res.Image.Bounds().Dx()*res.Image.Bounds().Dy() > 1000 {
		t.Errorf("AnalyzeReader of a 9 Mpx image with a 1000 px limit: %v, %v; want it downscaled", res, err)
	}
}

// bigPhoto returns a 4000×3000 grey JPEG (quality 90) with face scaled
// into the rectangle at.
func bigPhoto(t *testing.T, face image.Image, at image.Rectangle) *bytes.Buffer {
	t.Helper()
	big := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	draw.Draw(big, big.Bounds(), image.NewUniform(color.Gray{120}), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(big, at, face, face.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, big, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// TestBigPhotoDownscaled: a 12-megapixel photo over the pixel limit is
// analysed downscaled, not refused, and its boxes and landmarks come back
// in the photo's pixels: where the face was put. Beyond MaxDecodeBytes it
// is refused.
func TestBigPhotoDownscaled(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{Limits: imageio.Limits{MaxPixels: 1_000_000}})
	small, _, err := imageio.DecodeFile(filepath.Join("testdata", "face.jpg"), imageio.Limits{}) // 320×400
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a.Analyze(ctx, small)
	if err != nil || len(ref) != 1 {
		t.Fatalf("testdata/face.jpg: %v, %v; want one face", ref, err)
	}
	// The face, 4 times larger, at (1500, 900) in a 4000×3000 grey photo.
	const k, ox, oy = 4, 1500, 900
	buf := bigPhoto(t, small, image.Rect(ox, oy, ox+k*320, oy+k*400))
	res, err := a.AnalyzeReader(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Image.Bounds(); res.Width != 4000 || res.Height != 3000 || b.Dx()*b.Dy() > 1_000_000 {
		t.Fatalf("photo %d×%d analysed at %v; want 4000×3000 analysed at most 1 Mpx", res.Width, res.Height, b)
	}
	if len(res.Faces) != 1 {
		t.Fatalf("%d faces in the big photo, want 1: %+v", len(res.Faces), res.Faces)
	}
	got, want := res.Faces[0], ref[0]
	wantBox := image.Rect(ox+k*want.Box.Min.X, oy+k*want.Box.Min.Y, ox+k*want.Box.Max.X, oy+k*want.Box.Max.Y)
	tol := float64(wantBox.Dx()) / 10
	for i, d := range []int{got.Box.Min.X - wantBox.Min.X, got.Box.Min.Y - wantBox.Min.Y, got.Box.Max.X - wantBox.Max.X, got.Box.Max.Y - wantBox.Max.Y} {
		if math.Abs(float64(d)) > tol {
			t.Errorf("box %v, want about %v (edge %d off by %d px)", got.Box, wantBox, i, d)
			break
		}
	}
	if len(got.Landmarks) != len(want.Landmarks) || len(got.Landmarks) == 0 {
		t.Fatalf("landmarks %v, want %d", got.Landmarks, len(want.Landmarks))
	}
	for i, p := range got.Landmarks {
		w := want.Landmarks[i]
		if math.Hypot(p.X-(ox+k*w.X), p.Y-(oy+k*w.Y)) > tol {
			t.Errorf("landmark %d at %v, want about (%.0f, %.0f)", i, p, ox+k*w.X, oy+k*w.Y)
		}
	}
	if ann := res.Annotate(); ann.Bounds() != res.Image.Bounds().Sub(res.Image.Bounds().Min) {
		t.Errorf("annotated image %v, want the analysed image's size %v", ann.Bounds(), res.Image.Bounds())
	}
	// 12 Mpx of JPEG need about 34 MiB to decode whole, 12 MiB at 1/2 scale
	// (a build with libjpeg-turbo): over an 8 MiB bound either way.
	tight := newAnalyzer(t, agegender.Options{Limits: imageio.Limits{MaxPixels: 1_000_000, MaxDecodeBytes: 8 << 20}})
	if _, err := tight.AnalyzeReader(ctx, bytes.NewReader(buf.Bytes())); !errors.Is(err, agegender.ErrTooLarge) {
		t.Errorf("over MaxDecodeBytes: %v, want ErrTooLarge", err)
	}
}

func TestOptionsAndClose(t *testing.T) {
	g, age, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts agegender.Options
	}{
		{"negative batch", agegender.Options{GenderModel: g, AgeModel: age, MaxBatch: -1}},
		{"swapped models", agegender.Options{GenderModel: age, AgeModel: g}},
		{"missing file", agegender.Options{GenderModel: filepath.Join(t.TempDir(), "nope.agm"), AgeModel: age}},
		{"bad face options", agegender.Options{GenderModel: g, AgeModel: age, Face: face.Options{MinSize: 2}}},
		{"bad backend", agegender.Options{GenderModel: g, AgeModel: age, Backend: "nosuch"}},
	} {
		if _, err := agegender.New(c.opts); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	a, err := agegender.New(agegender.Options{GenderModel: g, AgeModel: age, Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if b := a.Backend(); !strings.Contains(b, "Go") {
		t.Errorf("Backend() = %q on the pure-Go backend", b)
	}
	a.Close()
	a.Close()
	if _, err := a.AnalyzeCrop(ctx, noiseCanvas(50, 50, 1)); !errors.Is(err, agegender.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestAnnotateAndJSON(t *testing.T) {
	img := image.NewRGBA(image.Rect(10, 10, 210, 160))
	f := agegender.Face{Index: 0, Box: image.Rect(50, 40, 130, 120), Gender: agegender.Female, GenderProb: 0.9,
		AgeGroup: agegender.Age25To32, AgeProbs: agegender.AgeProbs{agegender.Age25To32: 0.7}}
	out := Annotate(img, f)
	if out.Bounds() != image.Rect(0, 0, 200, 150) {
		t.Fatalf("annotated bounds %v", out.Bounds())
	}
	// The box's left edge (x=50 in img, 40 in out) is drawn, its inside is not.
	if c := out.RGBAAt(40, 80); c == (color.RGBA{}) {
		t.Error("box edge not drawn")
	}
	if c := out.RGBAAt(80, 80); c != (color.RGBA{}) {
		t.Errorf("inside of the box changed to %v", c)
	}
	b, err := f.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"face":0,"box":[50,40,80,80],"gender":"f","gender_prob":0.9,"age_group":"25-32",` +
		`"age_probs":{"0-2":0,"4-6":0,"8-12":0,"15-20":0,"25-32":0.7,"38-43":0,"48-53":0,"60-100":0}}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back agegender.Face
	if err := back.UnmarshalJSON(b); err != nil || back.Box != f.Box || back.AgeProb() != 0.7 {
		t.Errorf("round trip: %+v, %v", back, err)
	}

	// A model with years adds "age" and "age_std"; groups come in age order.
	f.Age, f.AgeStd = 29.96, 4.04
	f.AgeProbs = agegender.AgeProbs{agegender.Age60To100: 0.05, agegender.Age8To12: 0.05, agegender.Age25To32: 0.7, agegender.Age4To6: 0.2}
	b, err = json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"age_probs":{"0-2":0,"4-6":0.2,"8-12":0.05,"15-20":0,"25-32":0.7,"38-43":0,"48-53":0,"60-100":0.05}`, `"age":30,"age_std":4`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("JSON %s lacks %s", b, part)
		}
	}
	back = agegender.Face{}
	if err := json.Unmarshal(b, &back); err != nil || back.Age != 30 || back.AgeStd != 4 || !back.HasAge() {
		t.Errorf("round trip with years: %+v, %v", back, err)
	}
}

func Annotate(img image.Image, f ...agegender.Face) *image.RGBA { return agegender.Annotate(img, f) }

// TestErrorsIs checks that callers can tell what went wrong with errors.Is.
func TestErrorsIs(t *testing.T) {
	g, age, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := agegender.New(agegender.Options{GenderModel: g, AgeModel: age})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, c := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, agegender.ErrEmptyImage},
		{"text", []byte("hello, this is not a photo at all"), agegender.ErrNotImage},
		{"truncated PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00"), agegender.ErrCorruptImage},
	} {
		if _, err := a.AnalyzeReader(ctx, bytes.NewReader(c.body)); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want errors.Is(err, %v)", c.name, err, c.want)
		}
	}
	_, err = agegender.New(agegender.Options{Model: filepath.Join(t.TempDir(), "missing.agm")})
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, agegender.ErrNoSuchModel) {
		t.Errorf("missing model file: err = %v, want errors.Is(err, fs.ErrNotExist) and ErrNoSuchModel", err)
	}
}

// TestContext: a call whose context has ended returns its error, and an
// ended context takes queued faces out of the batch.
func TestContext(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	img := noiseCanvas(120, 120, 3)
	if _, err := a.Analyze(done, img); !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a cancelled context: %v", err)
	}
	if _, err := a.AnalyzeCrop(done, img); !errors.Is(err, context.Canceled) {
		t.Errorf("AnalyzeCrop with a cancelled context: %v", err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	if _, err := a.AnalyzeReader(done, &buf); !errors.Is(err, context.Canceled) {
		t.Errorf("AnalyzeReader with a cancelled context: %v", err)
	}
	expired, cancel2 := context.WithTimeout(context.Background(), -1)
	defer cancel2()
	if _, err := a.AnalyzeCrop(expired, img); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AnalyzeCrop past its deadline: %v", err)
	}
	// The Analyzer still answers afterwards.
	if _, err := a.AnalyzeCrop(ctx, img); err != nil {
		t.Errorf("after cancelled calls: %v", err)
	}
}

// TestTypes: genders and age groups print and marshal as the JSON strings.
func TestTypes(t *testing.T) {
	if agegender.Male.String() != "m" || agegender.Female.String() != "f" {
		t.Errorf("genders print as %v, %v", agegender.Male, agegender.Female)
	}
	want := []string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}
	for g := agegender.Age0To2; g <= agegender.Age60To100; g++ {
		if g.String() != want[g] {
			t.Errorf("AgeGroup(%d) = %q, want %q", int(g), g, want[g])
		}
		var back agegender.AgeGroup
		if b, err := g.MarshalText(); err != nil || back.UnmarshalText(b) != nil || back != g {
			t.Errorf("%v does not round-trip: %q, %v", g, b, err)
		}
	}
	if lo, hi := agegender.Age25To32.Years(); lo != 25 || hi != 32 {
		t.Errorf("Age25To32.Years() = %d, %d", lo, hi)
	}
	if _, err := json.Marshal(agegender.Face{Gender: 7}); err == nil {
		t.Error("a face with gender 7 marshals")
	}
}

// TestNoFaceJSON: a photo without faces is {"width":…,"height":…,"faces":[]}.
func TestNoFaceJSON(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{})
	var buf bytes.Buffer
	png.Encode(&buf, noiseCanvas(300, 200, 1))
	res, err := a.AnalyzeReader(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res); string(b) != `{"width":300,"height":200,"faces":[]}` {
		t.Errorf("JSON of a photo without faces: %s", b)
	}
}
