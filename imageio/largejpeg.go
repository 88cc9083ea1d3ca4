package imageio

import (
	"image"
	"image/color"
	"sync"
	"sync/atomic"
)

// LargeJPEGPixels is the size from which a build with libjpeg-turbo (build
// tag libjpeg) decodes a JPEG piece by piece (see [Reducer]) instead of
// whole: 2 megapixels. Below it, and in builds without libjpeg-turbo,
// JPEGs are decoded whole by Go's image/jpeg.
const LargeJPEGPixels = 2_000_000

// A Reducer is an image that can decode a part of itself at a reduced
// resolution, much more cheaply than the whole image at full size. The
// large JPEGs of a build with libjpeg-turbo are Reducers: libjpeg-turbo
// scales while it decodes (scaling the 8×8 inverse DCT, "DCT scaling",
// to 1/2, 1/4 or 1/8) and decodes only the rows and columns asked for.
// Programs that only look at a downscaled copy and at a few regions, as
// face detection and alignment do, never hold the full-size pixels: a
// 12-megapixel photo costs a 1/8-scale decode (a 500×375 image) and a
// region around each face.
//
// Reduce returns the pixels of r ∩ Bounds() at 1/s of the full
// resolution, s the largest of 1, 2, 4 and 8 not above maxScale (1 when
// maxScale < 2), or a finer scale when a part decoded before at it holds
// r (a caller that will read several parts asks for their union at the
// finest scale first, and pays for one decode). The image m has bounds starting at (0, 0); its pixel p
// shows the image's square of side s at off + s·p (in the image's
// coordinates; off may lie up to s−1 pixels outside r, and a pixel at the
// image's edge may cover less than s×s pixels). m must not be modified.
//
// The At method of a Reducer works, but decodes the whole image at full
// size on first use (and keeps it); [ToRGBA] does the same once.
type Reducer interface {
	image.Image
	Reduce(r image.Rectangle, maxScale int) (m *image.RGBA, s int, off image.Point)
}

// Reduced returns img itself, or, when img is a [Reducer], all of it
// decoded at the coarsest scale that keeps at least minSide pixels on its
// shorter side (full size when no scale does): what a caller that shrinks
// the image to about minSide pixels should read instead of the full-size
// pixels.
func Reduced(img image.Image, minSide int) image.Image {
	rd, ok := img.(Reducer)
	if !ok {
		return img
	}
	b := img.Bounds()
	m, _, _ := rd.Reduce(b, min(b.Dx(), b.Dy())/max(1, minSide))
	return m
}

// largeJPEG is a JPEG photo decoded on demand with libjpeg-turbo: a view
// (rect, in displayed pixels, after EXIF orientation) of a shared source.
type largeJPEG struct {
	*jpegSource
	rect image.Rectangle
}

// jpegSource holds a JPEG file and the pieces decoded from it.
type jpegSource struct {
	data   []byte
	w, h   int // stored size (before orientation)
	orient int // EXIF orientation, 1–8

	mu      sync.Mutex
	regions []region                   // recently decoded regions, newest first
	full    atomic.Pointer[image.RGBA] // the whole displayed image, once At or ToRGBA needed it
}

// region is a decoded part of the stored (unoriented) image at scale
// 1/denom; m.Rect is in the scaled image's pixels.
type region struct {
	denom int
	m     *image.RGBA
}

// maxRegions bounds the regions kept per photo: the 1/8 preview and a few
// per face are reused (refinement, then alignment), older ones dropped.
const maxRegions = 8

// newLargeJPEG checks JPEG b (stored size w×h, EXIF orientation orient) by
// decoding all of it at 1/8 scale, which it keeps as the first region,
// and returns it as a Reducer. An error (damaged data, a colour space
// libjpeg-turbo does not convert) means: decode it with image/jpeg.
func newLargeJPEG(b []byte, w, h, orient int) (*largeJPEG, error) {
	src := &jpegSource{data: b, w: w, h: h, orient: max(1, min(orient, 8))}
	m, err := libjpegDecode(b, 8, image.Rect(0, 0, ceilDiv(w, 8), ceilDiv(h, 8)), true)
	if err != nil {
		return nil, err
	}
	src.regions = []region{{8, m}}
	dw, dh := w, h
	if src.orient >= 5 {
		dw, dh = h, w
	}
	return &largeJPEG{src, image.Rect(0, 0, dw, dh)}, nil
}

func (v *largeJPEG) ColorModel() color.Model { return color.RGBAModel }
func (v *largeJPEG) Bounds() image.Rectangle { return v.rect }

// Opaque reports true: JPEGs have no transparency.
func (v *largeJPEG) Opaque() bool { return true }

// At returns the pixel at (x, y), decoding the whole image at full size
// the first time.
func (v *largeJPEG) At(x, y int) color.Color {
	if !image.Pt(x, y).In(v.rect) {
		return color.RGBA{}
	}
	return v.fullImage().RGBAAt(x, y)
}

// SubImage returns the view of r ∩ Bounds(), sharing the decoded pieces.
func (v *largeJPEG) SubImage(r image.Rectangle) image.Image {
	return &largeJPEG{v.jpegSource, r.Intersect(v.rect)}
}

// fullImage decodes the whole displayed image at full size, once.
func (v *largeJPEG) fullImage() *image.RGBA {
	s := v.jpegSource
	if m := s.full.Load(); m != nil {
		return m // At's path: no lock per pixel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.full.Load(); m != nil {
		return m
	}
	m := orient(s.decode(1, image.Rect(0, 0, s.w, s.h)), s.orient)
	s.full.Store(m)
	return m
}

// Reduce implements [Reducer].
func (v *largeJPEG) Reduce(r image.Rectangle, maxScale int) (*image.RGBA, int, image.Point) {
	r = r.Intersect(v.rect)
	if r.Empty() {
		return &image.RGBA{}, 1, r.Min
	}
	k := 1
	for k < 8 && 2*k <= maxScale {
		k *= 2
	}
	src := v.jpegSource
	st := mapRect(r, func(p image.Point) image.Point { return toStored(src.orient, src.w, src.h, p) })
	q := image.Rect(st.Min.X/k, st.Min.Y/k, ceilDiv(st.Max.X, k), ceilDiv(st.Max.Y, k)).
		Intersect(image.Rect(0, 0, ceilDiv(src.w, k), ceilDiv(src.h, k)))
	src.mu.Lock()
	m, k := src.region(k, q)
	src.mu.Unlock()
	// The unclipped stored square the region's pixels stand for, shown.
	q = m.Rect
	full := image.Rect(q.Min.X*k, q.Min.Y*k, q.Max.X*k, q.Max.Y*k)
	off := mapRect(full, func(p image.Point) image.Point { return toDisplay(src.orient, src.w, src.h, p) }).Min
	return orient(m, src.orient), k, off
}

// region returns the part q (scaled pixels) of the stored image at scale
// 1/denom, or, when a region decoded before at that or a finer scale
// holds it, that part of the region (the coarsest such): it returns the
// scale it used. A caller that will read several parts (the faces of a
// photo, each at the scale its size needs) can decode their union once at
// the finest scale among them, and every later part comes from it. s.mu
// is held.
func (s *jpegSource) region(denom int, q image.Rectangle) (*image.RGBA, int) {
	for d := denom; d >= 1; d /= 2 {
		f := denom / d
		qd := image.Rect(q.Min.X*f, q.Min.Y*f, q.Max.X*f, q.Max.Y*f).
			Intersect(image.Rect(0, 0, ceilDiv(s.w, d), ceilDiv(s.h, d)))
		for i, g := range s.regions {
			if g.denom == d && qd.In(g.m.Rect) {
				copy(s.regions[1:i+1], s.regions[:i]) // most recent first
				s.regions[0] = g
				return g.m.SubImage(qd).(*image.RGBA), d
			}
		}
	}
	m := s.decode(denom, q)
	if len(s.regions) == maxRegions {
		s.regions = s.regions[:maxRegions-1]
	}
	s.regions = append([]region{{denom, m}}, s.regions...)
	return m, denom
}

// decode decodes the part q of the stored image at scale 1/denom. The
// whole file decoded without error when the source was made, so an error
// now (out of memory in libjpeg) leaves the region grey rather than
// failing a caller that cannot take an error (image.Image's At).
//
// The region is decoded with a margin: libjpeg-turbo's chroma upsampling
// interpolates between neighbouring chroma samples, and at the edge of a
// cropped decode it repeats the last one instead, which changed edge
// pixels by up to 47 levels on a striped test image.
func (s *jpegSource) decode(denom int, q image.Rectangle) *image.RGBA {
	const margin = 16 // scaled pixels: at least one chroma sample
	wide := q.Inset(-margin).Intersect(image.Rect(0, 0, ceilDiv(s.w, denom), ceilDiv(s.h, denom)))
	m, err := libjpegDecode(s.data, denom, wide, false)
	if err != nil {
		m = image.NewRGBA(wide)
		for i := range m.Pix {
			m.Pix[i] = 128
		}
	}
	return m.SubImage(q).(*image.RGBA)
}

// orient returns m (bounds anywhere) turned by EXIF orientation o, with
// bounds starting at (0, 0). For o = 1 it shares m's pixels.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: image.Rect(0, 0, m.Rect.Dx(), m.Rect.Dy())}
	}
	return Orient(m, o).(*image.RGBA)
}

// toStored maps a corner point p of the displayed image (EXIF orientation
// o of a stored w×h image) to the stored image; toDisplay is its inverse.
// Points are pixel corners: pixel x covers [x, x+1).
func toStored(o, w, h int, p image.Point) image.Point {
	x, y := p.X, p.Y
	switch o {
	case 2:
		return image.Pt(w-x, y)
	case 3:
		return image.Pt(w-x, h-y)
	case 4:
		return image.Pt(x, h-y)
	case 5:
		return image.Pt(y, x)
	case 6:
		return image.Pt(y, h-x)
	case 7:
		return image.Pt(w-y, h-x)
	case 8:
		return image.Pt(w-y, x)
	}
	return p
}

func toDisplay(o, w, h int, p image.Point) image.Point {
	// Orientations 1–5 and 7 undo themselves; 6 and 8 (quarter turns)
	// undo each other. From 5 on, the displayed image is h×w.
	switch o {
	case 5, 7:
		return toStored(o, h, w, p)
	case 6:
		return toStored(8, h, w, p)
	case 8:
		return toStored(6, h, w, p)
	}
	return toStored(o, w, h, p)
}

// mapRect returns the rectangle spanned by f of r's corners.
func mapRect(r image.Rectangle, f func(image.Point) image.Point) image.Rectangle {
	a, b := f(r.Min), f(r.Max)
	return image.Rect(a.X, a.Y, b.X, b.Y) // image.Rect sorts the coordinates
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
