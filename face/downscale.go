package face

import (
	"image"
	"math"
)

// reducer is an image that decodes a part of itself at a reduced
// resolution (1/s, s a power of two up to 8) more cheaply than at full
// size: imageio.Reducer, which the large JPEGs of a build with
// libjpeg-turbo implement. Reduce returns the part r at 1/s for the
// largest such s ≤ maxScale, as an image with bounds from (0, 0) whose
// pixel p shows the image's square of side s at off + s·p. Detection and
// alignment read only a downscaled copy and the regions around faces, so
// with a reducer the full-size pixels are never decoded.
type reducer interface {
	Reduce(r image.Rectangle, maxScale int) (m *image.RGBA, s int, off image.Point)
}

// rgbPlane is a downscaled copy of a photo as float32 RGB in [-1, 1]
// (p/127.5 − 1, BlazeFace's input scale), row-major, 3 values per pixel.
// Plane pixel (i, j) shows the photo around min + k·(i+0.5, j+0.5).
type rgbPlane struct {
	w, h int
	pix  []float32
	min  image.Point // the photo's Bounds().Min
	k    float64     // photo pixels per plane pixel (≥ 1)
}

// downscale returns a copy of img whose longer side is at most maxSide
// (img's own size when smaller). Each plane pixel is the mean of a grid of
// up to about 4×4 photo pixels spread evenly over the area it covers, so a
// 12-megapixel photo costs about a million pixel reads, not twelve.
//
// An image that can decode itself at a reduced scale (a [reducer]: a large
// JPEG in a build with libjpeg-turbo) is read at the coarsest scale that
// still has maxSide pixels on its longer side.
func downscale(img image.Image, maxSide int) *rgbPlane {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	if rd, ok := img.(reducer); ok && !b.Empty() {
		return downscaleReduced(rd, b, maxSide, max(W, H)/max(1, maxSide))
	}
	k := max(1, float64(max(W, H))/float64(maxSide))
	w := max(1, int(math.Round(float64(W)/k)))
	h := max(1, int(math.Round(float64(H)/k)))
	pl := &rgbPlane{w: w, h: h, pix: make([]float32, 3*w*h), min: b.Min, k: k}
	// One scale for both axes, as the plane's k says: rounding w and h
	// separately would stretch one axis by up to half a plane pixel over
	// the image (2–4 photo pixels of shift in a face's refining plane).
	// The last row or column may reach past the image by less than a
	// plane pixel; reads there repeat the edge.
	kx := float64(W) / float64(w)
	ky := kx
	pl.k = kx
	// n×n samples per plane pixel, at the centres of an n×n split of its
	// area.
	n := max(1, min(4, int(math.Round(kx))))
	xs := make([]int, w*n)
	for i := range w {
		for s := range n {
			xs[i*n+s] = b.Min.X + min(W-1, int((float64(i)+(float64(s)+0.5)/float64(n))*kx))
		}
	}
	rd := newRGBReader(img)
	inv := float32(1 / (127.5 * float64(n*n)))
	sum := make([]int32, 3*w)
	for j := range h {
		row := pl.pix[3*w*j : 3*w*(j+1)]
		clear(sum)
		for t := range n {
			y := b.Min.Y + min(H-1, int((float64(j)+(float64(t)+0.5)/float64(n))*ky))
			rd.addRow(sum, xs, n, y)
		}
		for i, v := range sum {
			row[i] = float32(v)*inv - 1
		}
	}
	return pl
}

// downscaleReduced is downscale for the part b of a reducer, read at a
// scale of at most 1/maxScale.
func downscaleReduced(rd reducer, b image.Rectangle, maxSide, maxScale int) *rgbPlane {
	m, s, off := rd.Reduce(b, maxScale)
	pl := downscale(m, maxSide)
	pl.min, pl.k = off, float64(s)*pl.k
	return pl
}

// sample fills dst (size×size×3) with the plane as pass p shows it,
// bilinearly; outside the plane it is black (−1), as MediaPipe pads.
func (pl *rgbPlane) sample(p pass, size int, dst []float32) {
	// For an unrotated pass (the whole-photo pass upright, tiles) x
	// depends on u alone and y on v alone, so they are computed once per
	// column and row: the cross terms are exact zeros, and the values are
	// those of the general case.
	var xs, ys []float64
	if p.b == 0 && p.c == 0 {
		xs, ys = make([]float64, size), make([]float64, size)
		for i := range size {
			xs[i], _ = pl.coords(p, i, 0)
			_, ys[i] = pl.coords(p, 0, i)
		}
		if unitGrid(xs) && unitGrid(ys) {
			pl.copyGrid(int(xs[0]), int(ys[0]), size, dst)
			return
		}
	}
	for v := range size {
		for u := range size {
			var x, y float64
			if xs != nil {
				x, y = xs[u], ys[v]
			} else {
				x, y = pl.coords(p, u, v)
			}
			pl.bilinear(x, y, dst[3*(v*size+u):3*(v*size+u)+3])
		}
	}
}

// unitGrid reports whether a holds whole numbers one apart, a[0], a[0]+1,
// ...: the input pixels then fall on plane pixel centres, where bilinear
// interpolation returns the pixel itself (its weights are exactly 0).
func unitGrid(a []float64) bool {
	if len(a) == 0 || a[0] != math.Trunc(a[0]) || math.Abs(a[0]) > 1<<20 {
		return false
	}
	for i, v := range a {
		if v != a[0]+float64(i) {
			return false
		}
	}
	return true
}

// copyGrid fills dst (size×size×3) with the plane pixels from (x0, y0)
// on, and black (−1) where they lie outside the plane: what sample
// computes for a unit grid (the whole-photo pass of the back model, whose
// plane has its input's scale), without the per-pixel interpolation.
func (pl *rgbPlane) copyGrid(x0, y0, size int, dst []float32) {
	uLo, uHi := min(size, max(0, -x0)), max(0, min(size, pl.w-x0))
	for v := range size {
		row := dst[3*v*size : 3*(v+1)*size]
		y := y0 + v
		if y < 0 || y >= pl.h || uHi <= uLo {
			fillBlack(row)
			continue
		}
		fillBlack(row[:3*uLo])
		copy(row[3*uLo:3*uHi], pl.pix[3*(y*pl.w+x0+uLo):3*(y*pl.w+x0+uHi)])
		fillBlack(row[3*uHi:])
	}
}

func fillBlack(s []float32) {
	for i := range s {
		s[i] = -1
	}
}

// coords returns the plane position (in pixels, 0 at the centre of the
// first) that input pixel (u, v) of pass p shows.
func (pl *rgbPlane) coords(p pass, u, v int) (x, y float64) {
	q := p.toImage(float64(u)+0.5, float64(v)+0.5)
	return (q.X-float64(pl.min.X))/pl.k - 0.5, (q.Y-float64(pl.min.Y))/pl.k - 0.5
}

// bilinear sets o (3 values) to the plane interpolated at (x, y), or to
// black (−1) outside the plane.
func (pl *rgbPlane) bilinear(x, y float64, o []float32) {
	if x < -0.5 || y < -0.5 || x > float64(pl.w)-0.5 || y > float64(pl.h)-0.5 {
		o[0], o[1], o[2] = -1, -1, -1
		return
	}
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := float32(x-x0), float32(y-y0)
	ix, iy := int(x0), int(y0)
	ix0, iy0 := max(ix, 0), max(iy, 0)
	ix1, iy1 := min(ix+1, pl.w-1), min(iy+1, pl.h-1)
	p00, p10 := pl.pix[3*(iy0*pl.w+ix0):], pl.pix[3*(iy0*pl.w+ix1):]
	p01, p11 := pl.pix[3*(iy1*pl.w+ix0):], pl.pix[3*(iy1*pl.w+ix1):]
	for c := range 3 {
		top := p00[c] + (p10[c]-p00[c])*fx
		bot := p01[c] + (p11[c]-p01[c])*fx
		o[c] = top + (bot-top)*fy
	}
}

// rgbReader reads 8-bit RGB pixels with fast paths for the image types
// decoders produce. Alpha is ignored (premultiplied colours, so
// transparent pixels read as black).
type rgbReader struct {
	img  image.Image
	ycc  *image.YCbCr
	rgba *image.RGBA
	nrgb *image.NRGBA
	gray *image.Gray
	// ycol and ccol are addRow's column offsets into ycc's planes.
	ycol, ccol []int
}

func newRGBReader(img image.Image) *rgbReader {
	r := &rgbReader{img: img}
	switch m := img.(type) {
	case *image.YCbCr:
		r.ycc = m
	case *image.RGBA:
		r.rgba = m
	case *image.NRGBA:
		r.nrgb = m
	case *image.Gray:
		r.gray = m
	}
	return r
}

// addRow adds to sum[3i:3i+3] the RGB values of the pixels (xs[i·n+s], y)
// for s < n, as rgb gives them; the pixels must lie inside the image.
// Decoded JPEGs, the common case and the one that matters (a 12-megapixel
// photo is read at a million points), get a loop without per-pixel
// dispatch or offset arithmetic.
func (r *rgbReader) addRow(sum []int32, xs []int, n, y int) {
	m := r.ycc
	if m == nil {
		for i := range len(sum) / 3 {
			var cr, cg, cb int32
			for s := range n {
				a, b, c := r.rgb(xs[i*n+s], y)
				cr, cg, cb = cr+a, cg+b, cb+c
			}
			sum[3*i] += cr
			sum[3*i+1] += cg
			sum[3*i+2] += cb
		}
		return
	}
	if len(r.ycol) != len(xs) {
		// Column offsets relative to the row's first pixel: for every
		// subsampling ratio, COffset(x, y) − COffset(Min.X, y) depends on
		// x alone.
		x0, y0 := m.Rect.Min.X, m.Rect.Min.Y
		r.ycol, r.ccol = make([]int, len(xs)), make([]int, len(xs))
		for k, x := range xs {
			r.ycol[k] = m.YOffset(x, y0) - m.YOffset(x0, y0)
			r.ccol[k] = m.COffset(x, y0) - m.COffset(x0, y0)
		}
	}
	yy := m.Y[m.YOffset(m.Rect.Min.X, y):]
	cbs, crs := m.Cb[m.COffset(m.Rect.Min.X, y):], m.Cr[m.COffset(m.Rect.Min.X, y):]
	for i := range len(sum) / 3 {
		var sr, sg, sb int32
		for k := i * n; k < (i+1)*n; k++ {
			y1 := int32(yy[r.ycol[k]])*0x10101 + 1<<15
			ci := r.ccol[k]
			cb, cr := int32(cbs[ci])-128, int32(crs[ci])-128
			sr += clamp8((y1 + 91881*cr) >> 16)
			sg += clamp8((y1 - 22554*cb - 46802*cr) >> 16)
			sb += clamp8((y1 + 116130*cb) >> 16)
		}
		sum[3*i] += sr
		sum[3*i+1] += sg
		sum[3*i+2] += sb
	}
}

// rgb returns pixel (x, y), which must lie inside the image.
func (r *rgbReader) rgb(x, y int) (int32, int32, int32) {
	switch {
	case r.ycc != nil:
		yy := int32(r.ycc.Y[r.ycc.YOffset(x, y)])
		ci := r.ycc.COffset(x, y)
		cb, cr := int32(r.ycc.Cb[ci])-128, int32(r.ycc.Cr[ci])-128
		// JFIF YCbCr → RGB in 16.16 fixed point, as image/color does but
		// rounded to the nearest level (image/color truncates).
		y1 := yy*0x10101 + 1<<15
		return clamp8((y1 + 91881*cr) >> 16), clamp8((y1 - 22554*cb - 46802*cr) >> 16), clamp8((y1 + 116130*cb) >> 16)
	case r.rgba != nil:
		i := r.rgba.PixOffset(x, y)
		return int32(r.rgba.Pix[i]), int32(r.rgba.Pix[i+1]), int32(r.rgba.Pix[i+2])
	case r.nrgb != nil:
		i := r.nrgb.PixOffset(x, y)
		a := int32(r.nrgb.Pix[i+3])
		return int32(r.nrgb.Pix[i]) * a / 255, int32(r.nrgb.Pix[i+1]) * a / 255, int32(r.nrgb.Pix[i+2]) * a / 255
	case r.gray != nil:
		g := int32(r.gray.Pix[r.gray.PixOffset(x, y)])
		return g, g, g
	}
	cr, cg, cb, _ := r.img.At(x, y).RGBA()
	return int32(cr >> 8), int32(cg >> 8), int32(cb >> 8)
}

func clamp8(v int32) int32 { return min(max(v, 0), 255) }
