//go:build libjpeg && cgo

package face

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"

	"github.com/agegender/agegender/imageio"
	xdraw "golang.org/x/image/draw"
)

// fullSizeTrap wraps a Reducer and fails the test if anything reads its
// pixels at full size through At (which would decode the whole photo).
type fullSizeTrap struct {
	imageio.Reducer
	t *testing.T
}

func (f fullSizeTrap) At(x, y int) color.Color {
	f.t.Fatalf("At(%d, %d): the photo was read at full size", x, y)
	return nil
}

func (f fullSizeTrap) SubImage(r image.Rectangle) image.Image {
	return fullSizeTrap{f.Reducer.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(r).(imageio.Reducer), f.t}
}

// bothDecodes encodes img as a JPEG of the given quality and returns it
// decoded whole by image/jpeg and decoded in pieces by imageio (trapped
// against full-size reads).
func bothDecodes(t *testing.T, img image.Image, quality int) (image.Image, fullSizeTrap) {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	whole, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dec, _, err := imageio.Decode(bytes.NewReader(buf.Bytes()), imageio.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	rd, ok := dec.(imageio.Reducer)
	if !ok {
		t.Fatalf("decoded as %T, want an imageio.Reducer", dec)
	}
	return whole, fullSizeTrap{rd, t}
}

// TestLargeJPEGPhoto: in a 12-megapixel JPEG decoded piece by piece
// (a build with libjpeg-turbo), BlazeFace finds the same face as in the
// same JPEG decoded whole by image/jpeg, and alignment cuts the same crop,
// without any full-size read of the photo.
func TestLargeJPEGPhoto(t *testing.T) {
	d := newTestBlazeFace(t)
	for i, path := range utkFiles(t, 3, 997) {
		face := loadImage(t, path)
		// The face 500–900 pixels tall on a textured 4000×3000 frame.
		canvas := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
		for y := range 3000 {
			for x := range 4000 {
				v := uint8(100 + (x*7+y*13)%40)
				canvas.SetRGBA(x, y, color.RGBA{v, v + 10, v + 20, 255})
			}
		}
		side := 500 + 200*i
		at := image.Rect(700+900*i, 1900-600*i, 700+900*i+side, 1900-600*i+side)
		xdraw.CatmullRom.Scale(canvas, at, face, face.Bounds(), xdraw.Src, nil)
		whole, lazy := bothDecodes(t, canvas, 90)
		want, err := d.Detect(whole, BlazeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Detect(lazy, BlazeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || len(want) != 1 {
			t.Fatalf("%s: %d faces piece by piece, %d whole; want 1 each", path, len(got), len(want))
		}
		g, w := got[0], want[0]
		// Two resamplings of the same photo move BlazeFace's box and
		// landmarks by 1–2 % of the face (the landmarks of neither are
		// closer to where the face was pasted); TestReducedPlanes checks
		// the geometry exactly.
		if iou := boxIoU(g.Box, w.Box); iou < 0.85 {
			t.Errorf("%s: box %v piece by piece, %v whole (IoU %.2f)", path, g.Box, w.Box, iou)
		}
		for k := range w.Landmarks {
			if dist := math.Hypot(g.Landmarks[k].X-w.Landmarks[k].X, g.Landmarks[k].Y-w.Landmarks[k].Y); dist > 0.03*float64(side) {
				t.Errorf("%s: landmark %d at %v piece by piece, %v whole", path, k, g.Landmarks[k], w.Landmarks[k])
			}
		}
		// The same detection aligned from both: the reduced decode is
		// the antialiased version of the same pixels.
		a, b := AlignTo(lazy, w, 200, UTKFace), AlignTo(whole, w, 200, UTKFace)
		var sum float64
		for j := range a.Pix {
			sum += math.Abs(float64(a.Pix[j]) - float64(b.Pix[j]))
		}
		if mean := sum / float64(len(a.Pix)); mean > 4 {
			t.Errorf("%s: aligned crops differ by %.2f levels on average", path, mean)
		}
	}
}

// TestReducedPlanes: the detection plane, a refining plane and an aligned
// crop made from a photo decoded piece by piece show the same photo
// points as those made from the photo decoded whole: the shift that best
// aligns them is zero.
func TestReducedPlanes(t *testing.T) {
	canvas := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	for y := range 3000 {
		for x := range 4000 {
			v := uint8(128 + 100*math.Sin(float64(x)/23)*math.Cos(float64(y)/31))
			canvas.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	whole, lazy := bothDecodes(t, canvas, 95)
	f := Face{Box: image.Rect(1624, 1313, 2269, 1959)}
	for name, pair := range map[string][2]*rgbPlane{
		"refining plane":  {refinePlane(whole, f, 128), refinePlane(lazy, f, 128)},
		"detection plane": {downscale(whole, 256), downscale(lazy, 256)},
	} {
		a, b := pair[0], pair[1]
		best, shift := math.Inf(1), Point{}
		for dy := -12.0; dy <= 12; dy++ {
			for dx := -12.0; dx <= 12; dx++ {
				var sum float64
				n := 0
				for py := 1400.0; py < 1900; py += 7 {
					for px := 1700.0; px < 2200; px += 7 {
						var c1, c2 [3]float32
						a.bilinear((px-float64(a.min.X))/a.k-0.5, (py-float64(a.min.Y))/a.k-0.5, c1[:])
						b.bilinear((px+dx-float64(b.min.X))/b.k-0.5, (py+dy-float64(b.min.Y))/b.k-0.5, c2[:])
						sum += math.Abs(float64(c1[0] - c2[0]))
						n++
					}
				}
				if m := sum / float64(n); m < best {
					best, shift = m, Point{dx, dy}
				}
			}
		}
		if shift != (Point{}) && !(name == "detection plane" && math.Abs(shift.X) <= 1 && math.Abs(shift.Y) <= 1) {
			t.Errorf("%s: best aligned when shifted by %v photo pixels", name, shift)
		}
	}
	// An aligned crop: pixels of the same photo points.
	g := Face{Box: f.Box, Landmarks: []Point{{1800, 1520}, {2080, 1512}, {1940, 1700}, {1942, 1820}, {1700, 1560}, {2180, 1550}}}
	a, b := AlignTo(whole, g, 200, UTKFace), AlignTo(lazy, g, 200, UTKFace)
	best, shift := math.Inf(1), image.Point{}
	for dy := -3; dy <= 3; dy++ {
		for dx := -3; dx <= 3; dx++ {
			var sum float64
			for y := 10; y < 190; y++ {
				for x := 10; x < 190; x++ {
					sum += math.Abs(float64(a.Pix[a.PixOffset(x, y)]) - float64(b.Pix[b.PixOffset(x+dx, y+dy)]))
				}
			}
			if sum < best {
				best, shift = sum, image.Pt(dx, dy)
			}
		}
	}
	if shift != (image.Point{}) {
		t.Errorf("aligned crop: best aligned when shifted by %v crop pixels", shift)
	}
}

func boxIoU(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}
