package face

import (
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDownscaleYCbCrFastPath checks that the YCbCr loop of downscale gives
// exactly the plane of the same pixels converted one by one (rgbReader.rgb)
// into an RGBA image, for every subsampling ratio, a sub-image with an odd
// origin and reductions from none to over 4×.
func TestDownscaleYCbCrFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	for _, ratio := range ratios {
		m := image.NewYCbCr(image.Rect(0, 0, 301, 203), ratio)
		for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
			for i := range p {
				p[i] = uint8(rng.IntN(256))
			}
		}
		rgba, rd := image.NewRGBA(m.Rect), newRGBReader(m)
		for y := range m.Rect.Dy() {
			for x := range m.Rect.Dx() {
				r, g, b := rd.rgb(x, y)
				rgba.SetRGBA(x, y, color.RGBA{uint8(r), uint8(g), uint8(b), 255})
			}
		}
		sub := image.Rect(7, 3, 290, 200)
		for i, img := range []image.Image{m, m.SubImage(sub)} {
			ref := image.Image(rgba)
			if i == 1 {
				ref = rgba.SubImage(sub)
			}
			for _, side := range []int{400, 256, 128, 60, 31} {
				got, want := downscale(img, side), downscale(ref, side)
				if got.w != want.w || got.h != want.h || !slices.Equal(got.pix, want.pix) {
					t.Errorf("%v, bounds %v, side %d: the YCbCr loop differs from the per-pixel path", ratio, img.Bounds(), side)
				}
			}
		}
	}
}

// TestSampleUnrotated checks that sample's per-row and per-column mapping
// for unrotated passes gives the values of the per-pixel one, for the
// whole-photo passes at every turn (the turned ones take the per-pixel
// path) and a plane whose photo does not start at (0, 0).
// The photos of 448×448, 1152×864 and 640×480 pixels give the back
// model's upright pass a unit grid (copyGrid), the others not.
func TestSampleUnrotated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, r := range []image.Rectangle{image.Rect(5, 9, 705, 409), image.Rect(0, 0, 448, 448), image.Rect(3, 2, 1155, 866), image.Rect(0, 0, 480, 640), image.Rect(0, 0, 200, 120)} {
		img := image.NewRGBA(r)
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
		}
		testSampleUnrotated(t, downscale(img, 256), img)
	}
}

func testSampleUnrotated(t *testing.T, pl *rgbPlane, img image.Image) {
	for turn := range 4 {
		for _, size := range []int{256, 128} {
			p := wholePass(img.Bounds(), turn, size)
			got := make([]float32, size*size*3)
			pl.sample(p, size, got)
			for v := range size {
				for u := range size {
					want := make([]float32, 3)
					x, y := pl.coords(p, u, v)
					pl.bilinear(x, y, want)
					if !slices.Equal(got[3*(v*size+u):3*(v*size+u)+3], want) {
						t.Fatalf("%v: turn %d, size %d, pixel (%d, %d): %v, general path %v", img.Bounds(), turn, size, u, v, got[3*(v*size+u):3*(v*size+u)+3], want)
					}
				}
			}
		}
	}
}
