package imageio

import (
	"image"
	"image/color"
	"image/draw"
	"math"
)

// DefaultDecodeBytes is a suggested [Limits.MaxDecodeBytes]: 1 GiB of
// full-size decoded pixels, that is about 357 megapixels of JPEG, 268 of
// 8-bit RGBA PNG or 134 of 16-bit PNG (see [decodedBytes]).
const DefaultDecodeBytes = 1 << 30

// decodedBytes estimates, from a header, the memory in bytes that Go's
// decoders take for the full-size pixels of a w×h image of the given colour
// model: 1 byte per pixel for grey and paletted images, 2 for 16-bit grey,
// 3 for JPEG's YCbCr (its worst case, 4:4:4; 4:2:0 takes 1.5), 4 for
// RGBA, NRGBA, CMYK and WebP's YCbCr with alpha, and 8 for anything else
// (16-bit RGBA). The pixel count is taken as is, so the estimate never
// overflows for headers within 32-bit sizes.
func decodedBytes(w, h int, m color.Model) int64 {
	px := int64(w) * int64(h)
	switch m {
	case color.GrayModel:
		return px
	case color.Gray16Model:
		return 2 * px
	case color.YCbCrModel:
		return 3 * px
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4 * px
	}
	if _, ok := m.(color.Palette); ok {
		return px
	}
	return 8 * px
}

// fitPixels returns the largest size with the aspect ratio of w×h (to
// within rounding) and at most maxPixels pixels, each side at least 1.
func fitPixels(w, h int, maxPixels int64) (int, int) {
	s := math.Sqrt(float64(maxPixels) / (float64(w) * float64(h)))
	dw, dh := max(1, int(float64(w)*s)), max(1, int(float64(h)*s))
	for int64(dw)*int64(dh) > maxPixels { // guard against rounding up
		if dw >= dh {
			dw--
		} else {
			dh--
		}
	}
	return min(dw, w), min(dh, h)
}

// downscale returns src shrunk to dw×dh (each no larger than src's side) as
// a new *image.RGBA, every output pixel the exact area average of the
// source pixels it covers (a box filter with fractional edges), and any
// transparency composited onto white as [Flatten] does.
//
// It streams: each source row is converted into a one-row RGBA buffer by
// image/draw (fast paths for YCbCr, Gray, RGBA, NRGBA, CMYK) and added into
// two output-row accumulators, so besides src and the result it allocates
// O(source width + 3×dw) memory, never a full-size copy. (The kernel
// scalers of golang.org/x/image/draw allocate dw × source height × 32 bytes
// of temporary buffer, 3.2 GB for 200 → 50 megapixels, and its
// ApproxBiLinear skips source pixels, which aliases beyond 2×.)
func downscale(src image.Image, dw, dh int) *image.RGBA {
	sr := src.Bounds()
	w, h := sr.Dx(), sr.Dy()
	// In units where a source pixel is dw wide and an output pixel w wide,
	// source pixel x covers [x·dw, (x+1)·dw) and overlaps output pixel
	// i0 = x·dw/w, and i0+1 when it crosses the boundary (i0+1)·w. The
	// weights are normalised so that each output pixel's sum to 1.
	type tap struct {
		i      int
		w0, w1 float32 // weights into output pixels i and i+1
	}
	taps := func(n, dn int) []tap {
		t := make([]tap, n)
		for x := range n {
			i := x * dn / n
			lo, hi, b := x*dn, (x+1)*dn, (i+1)*n
			if hi <= b {
				t[x] = tap{i, float32(dn) / float32(n), 0}
			} else {
				t[x] = tap{i, float32(b-lo) / float32(n), float32(hi-b) / float32(n)}
			}
		}
		return t
	}
	tx, ty := taps(w, dw), taps(h, dh)

	opaque := true
	if o, ok := src.(interface{ Opaque() bool }); !ok || !o.Opaque() {
		opaque = false
	}
	row := image.NewRGBA(image.Rect(0, 0, w, 1))
	hrow := make([]float32, 3*dw)
	acc := [2][]float32{make([]float32, 3*dw), make([]float32, 3*dw)}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	emit := func(j int, a []float32) {
		out := dst.Pix[j*dst.Stride:]
		for i := range dw {
			for c := range 3 {
				out[4*i+c] = uint8(min(255, max(0, a[3*i+c]+0.5)))
			}
			out[4*i+3] = 0xff
		}
	}
	cur := 0 // output row held in acc[0]; acc[1] holds cur+1
	for y := range h {
		if opaque {
			draw.Draw(row, row.Rect, src, image.Pt(sr.Min.X, sr.Min.Y+y), draw.Src)
		} else {
			draw.Draw(row, row.Rect, image.White, image.Point{}, draw.Src)
			draw.Draw(row, row.Rect, src, image.Pt(sr.Min.X, sr.Min.Y+y), draw.Over)
		}
		clear(hrow)
		for x, t := range tx {
			p := row.Pix[4*x : 4*x+3]
			o := hrow[3*t.i:]
			o[0] += t.w0 * float32(p[0])
			o[1] += t.w0 * float32(p[1])
			o[2] += t.w0 * float32(p[2])
			if t.w1 != 0 {
				o[3] += t.w1 * float32(p[0])
				o[4] += t.w1 * float32(p[1])
				o[5] += t.w1 * float32(p[2])
			}
		}
		t := ty[y]
		for t.i > cur { // this row starts a new output row: finish cur
			emit(cur, acc[0])
			acc[0], acc[1] = acc[1], acc[0]
			clear(acc[1])
			cur++
		}
		for k, v := range hrow {
			acc[0][k] += t.w0 * v
		}
		if t.w1 != 0 {
			for k, v := range hrow {
				acc[1][k] += t.w1 * v
			}
		}
	}
	emit(cur, acc[0])
	return dst
}
