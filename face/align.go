package face

import (
	"image"
	"image/color"
	"math"
)

// UTKFace framing, measured with this package's own detector so that Align
// undoes exactly what Detect reports on a training image.
//
// TestCalibrate (go test ./face -run Calibrate -calibrate=1000 -v) ran
// Detect with DefaultOptions on 1000 UTKFace "aligned & cropped" images
// (every 21st file of the sorted listing, all 200×200). A face was found in
// 970 (97.0%); both eyes were accepted in all 970. Means, in continuous
// coordinates of the 200×200 frame (pixel i covers [i, i+1), so the frame
// centre is (100, 100) and an integer pupil position p stands for p+0.5):
//
//	box side              190.8  (sd 17.7; log sd 0.11)
//	box centre            (95.6, 77.4)  (sd 4.9, 7.8)
//	eye midpoint          (98.5, 60.2)  (sd 4.6, 7.9)
//	eye distance          76.1   (sd 9.7; log sd 0.16)
//	eye-line angle        -0.2°  (sd 5.6°; p10 -3.8°, p90 3.3°)
//
// The box side predicts the frame size better than the eye distance (log sd
// 0.11 against 0.16, and their geometric mean is no better at 0.13), so the
// scale comes from the box alone. The centre is the mean of the estimates
// from the box centre and from the eye midpoint, whose errors are similar.
// The eyes also give the roll angle, which the box cannot.
const (
	utkSide        = 200.0 // side of a UTKFace image
	utkBoxSide     = 190.8 // mean detected box side in a UTKFace image
	utkBoxCentreX  = 95.6  // mean detected box centre
	utkBoxCentreY  = 77.4  //
	utkEyeMidX     = 98.5  // mean midpoint between the detected pupils
	utkEyeMidY     = 60.2  //
	utkFrameCentre = utkSide / 2
)

// utkLandmarks are the mean BlazeFace landmarks (right eye, left eye, nose
// tip, mouth) on UTKFace training images, in the 200×200 frame; measured
// by TestCalibrateBlazeFace (go test ./face -run CalibrateBlazeFace -v
// -calibrate=300): 300 training images, a face in all 300, standard
// deviations 5–8 pixels per coordinate.
var utkLandmarks = [4]Point{{62.7, 61.6}, {131.2, 60.6}, {95.4, 103.4}, {96.6, 135.8}}

// Align cuts face f out of img as an out×out image framed like a UTKFace
// "aligned & cropped" face: rotated by -f.Angle so the eyes are level, and
// scaled and shifted so the face has the size and position it has in the
// training images. Face f must come from Detect on the same img.
//
// Align samples img bilinearly in a single affine pass (no intermediate
// rotated copy). Where the frame reaches past the edge of img, the edge
// pixels are repeated. Align panics if out is not positive.
//
// A face with Landmarks (BlazeFace) is fitted to UTKFace's framing from its
// eyes, nose tip and mouth (see AlignTo); a face without (pigo) from its box
// and pupils.
func Align(img image.Image, f Face, out int) *image.RGBA {
	return AlignTo(img, f, out, UTKFace)
}

// Framing is where a network's training crops have a face's landmarks:
// the person's right eye, left eye, nose tip and mouth centre, in the
// continuous pixel coordinates of a Side×Side crop.
type Framing struct {
	Name   string
	Side   float64
	Points [4]Point
}

// UTKFace is the framing of UTKFace's "aligned & cropped" 200×200 images,
// on which the built-in networks were trained: the mean BlazeFace
// landmarks of UTKFace training images (TestCalibrateBlazeFace).
var UTKFace = Framing{Name: "utkface", Side: utkSide, Points: utkLandmarks}

// ArcFace is InsightFace's 112×112 five-point framing (ArcFace,
// MobileFaceNet), with its two mouth corners averaged to the mouth
// centre: the framing package transfer's MobileFaceNet backbone expects.
var ArcFace = Framing{Name: "arcface", Side: 112, Points: [4]Point{
	{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {56.1396, 92.2848}}}

// AlignTo cuts face f out of img as an out×out image in framing fr: the
// similarity transform (rotation, uniform scale, shift) that best maps
// fr's four landmarks onto the face's, by least squares, so the roll comes
// from the landmarks at any angle, upside down included. A face without
// Landmarks gets the positions its UTKFace framing (from box and pupils)
// implies. Sampling is bilinear in a single pass, with edge pixels
// repeated past the image's border. From an image that decodes parts of
// itself at reduced scales (imageio.Reducer: a large JPEG in a build with
// libjpeg-turbo) it samples the face's region decoded at the coarsest
// scale with at least one pixel per output pixel. AlignTo panics if out is not positive
// or fr.Side is not.
func AlignTo(img image.Image, f Face, out int, fr Framing) *image.RGBA {
	if out <= 0 || !(fr.Side > 0) {
		panic("face: AlignTo needs a positive output size and framing side")
	}
	a := frameTransformTo(f, fr)
	dst := image.NewRGBA(image.Rect(0, 0, out, out))
	step := fr.Side / float64(out) // frame units per output pixel
	if rd, ok := img.(reducer); ok {
		img, a = reduceFrame(rd, img.Bounds(), a, fr.Side, step)
	}
	s := newSampler(img)
	for v := 0; v < out; v++ {
		py := (float64(v) + 0.5) * step
		row := dst.Pix[v*dst.Stride:]
		for u := 0; u < out; u++ {
			px := (float64(u) + 0.5) * step
			// Source point in continuous coordinates; subtract 0.5 to
			// index pixel centres.
			x := a[0]*px + a[1]*py + a[2] - 0.5
			y := a[3]*px + a[4]*py + a[5] - 0.5
			c := s.bilinear(x, y)
			row[4*u+0], row[4*u+1], row[4*u+2], row[4*u+3] = c.R, c.G, c.B, c.A
		}
	}
	return dst
}

// reduceFrame returns the part of image rd (bounds b) that the frame of
// side side, mapped by a, shows, decoded at the coarsest scale that keeps
// at least one pixel per output pixel (step frame units), and a mapped to
// that part's pixels: sampling it gives the crop without decoding the
// photo at full size, and without the aliasing of bilinear sampling from
// much finer pixels.
func reduceFrame(rd reducer, b image.Rectangle, a [6]float64, side, step float64) (image.Image, [6]float64) {
	x0, y0 := math.Inf(1), math.Inf(1)
	x1, y1 := math.Inf(-1), math.Inf(-1)
	for _, c := range [4][2]float64{{0, 0}, {side, 0}, {0, side}, {side, side}} {
		x, y := a[0]*c[0]+a[1]*c[1]+a[2], a[3]*c[0]+a[4]*c[1]+a[5]
		x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
	}
	clamp := func(v float64) int { return int(max(-1<<30, min(1<<30, v))) }
	r := image.Rect(clamp(math.Floor(x0))-2, clamp(math.Floor(y0))-2, clamp(math.Ceil(x1))+2, clamp(math.Ceil(y1))+2)
	// A frame reaching past the photo repeats its edge pixels: keep at
	// least the nearest row or column of the photo in the region.
	r.Min.X, r.Max.X = min(max(r.Min.X, b.Min.X), b.Max.X-1), max(min(r.Max.X, b.Max.X), b.Min.X+1)
	r.Min.Y, r.Max.Y = min(max(r.Min.Y, b.Min.Y), b.Max.Y-1), max(min(r.Max.Y, b.Max.Y), b.Min.Y+1)
	per := math.Hypot(a[0], a[3]) * step // photo pixels per output pixel
	m, s, off := rd.Reduce(r, int(per))
	k := float64(s)
	return m, [6]float64{a[0] / k, a[1] / k, (a[2] - float64(off.X)) / k, a[3] / k, a[4] / k, (a[5] - float64(off.Y)) / k}
}

// Crops aligns each face of faces with Align, returning the crops in the
// same order.
func Crops(img image.Image, faces []Face, out int) []*image.RGBA {
	crops := make([]*image.RGBA, len(faces))
	for i, f := range faces {
		crops[i] = Align(img, f, out)
	}
	return crops
}

// frameTransformTo returns the affine map from a point of framing fr to the
// point of the source image it shows (as frameTransform).
func frameTransformTo(f Face, fr Framing) [6]float64 {
	var pts [4]Point
	if len(f.Landmarks) >= 4 {
		copy(pts[:], f.Landmarks[:4])
	} else {
		a := frameTransform(f)
		for i, q := range utkLandmarks {
			pts[i] = Point{a[0]*q.X + a[1]*q.Y + a[2], a[3]*q.X + a[4]*q.Y + a[5]}
		}
		if fr.Name == UTKFace.Name {
			return a
		}
	}
	return similarity(fr.Points[:], pts[:])
}

// similarity returns, as the top two rows of a 3×3 matrix, the map
// p ↦ s·R(θ)·p + t that brings the points from closest to the points to,
// by least squares (Umeyama's method without reflection).
func similarity(from, to []Point) [6]float64 {
	var fm, tm Point
	for i := range from {
		fm.X += from[i].X / float64(len(from))
		fm.Y += from[i].Y / float64(len(from))
		tm.X += to[i].X / float64(len(to))
		tm.Y += to[i].Y / float64(len(to))
	}
	var a, b, n float64
	for i := range from {
		fx, fy := from[i].X-fm.X, from[i].Y-fm.Y
		tx, ty := to[i].X-tm.X, to[i].Y-tm.Y
		a += fx*tx + fy*ty
		b += fx*ty - fy*tx
		n += fx*fx + fy*fy
	}
	c, s := a/n, b/n // s·cos θ, s·sin θ
	return [6]float64{c, -s, tm.X - (c*fm.X - s*fm.Y), s, c, tm.Y - (s*fm.X + c*fm.Y)}
}

// frameTransform returns the affine map, as the row-major top two rows of a
// 3×3 matrix, from a point of the UTKFace 200×200 frame to the point of the
// source image it shows, both in continuous pixel coordinates.
//
// A point p of the frame is shown at anchor + k·R(θ)·(p − ref), with
// k = box side / utkBoxSide, θ = f.Angle, and (anchor, ref) either the box
// centre and its UTKFace mean or the eye midpoint and its UTKFace mean. With
// both available the two translations are averaged.
func frameTransform(f Face) [6]float64 {
	side := float64(f.Box.Dx())
	k := side / utkBoxSide
	sin, cos := math.Sincos(f.Angle)
	m := [4]float64{k * cos, -k * sin, k * sin, k * cos}
	apply := func(x, y float64) (float64, float64) { return m[0]*x + m[1]*y, m[2]*x + m[3]*y }

	// Translation from the box: box centre − k·R·(UTKFace box centre).
	bx := float64(f.Box.Min.X) + side/2
	by := float64(f.Box.Min.Y) + float64(f.Box.Dy())/2
	rx, ry := apply(utkBoxCentreX, utkBoxCentreY)
	tx, ty := bx-rx, by-ry
	if f.EyesFound {
		ex := float64(f.LeftEye.X+f.RightEye.X)/2 + 0.5
		ey := float64(f.LeftEye.Y+f.RightEye.Y)/2 + 0.5
		rx, ry := apply(utkEyeMidX, utkEyeMidY)
		tx, ty = (tx+ex-rx)/2, (ty+ey-ry)/2
	}
	return [6]float64{m[0], m[1], tx, m[2], m[3], ty}
}

// sampler reads premultiplied 8-bit RGBA pixels with fast paths for the
// image types decoders produce.
type sampler struct {
	img  image.Image
	b    image.Rectangle
	rgba *image.RGBA
	ycc  *image.YCbCr
}

func newSampler(img image.Image) *sampler {
	s := &sampler{img: img, b: img.Bounds()}
	switch m := img.(type) {
	case *image.RGBA:
		s.rgba = m
	case *image.YCbCr:
		s.ycc = m
	}
	return s
}

// at returns pixel (x, y), clamped to the bounds, as premultiplied RGBA.
func (s *sampler) at(x, y int) [4]float32 {
	if s.b.Empty() {
		return [4]float32{}
	}
	x = min(max(x, s.b.Min.X), s.b.Max.X-1)
	y = min(max(y, s.b.Min.Y), s.b.Max.Y-1)
	switch {
	case s.rgba != nil:
		i := s.rgba.PixOffset(x, y)
		p := s.rgba.Pix[i : i+4 : i+4]
		return [4]float32{float32(p[0]), float32(p[1]), float32(p[2]), float32(p[3])}
	case s.ycc != nil:
		yi, ci := s.ycc.YOffset(x, y), s.ycc.COffset(x, y)
		r, g, b := color.YCbCrToRGB(s.ycc.Y[yi], s.ycc.Cb[ci], s.ycc.Cr[ci])
		return [4]float32{float32(r), float32(g), float32(b), 255}
	}
	r, g, b, a := s.img.At(x, y).RGBA()
	return [4]float32{float32(r >> 8), float32(g >> 8), float32(b >> 8), float32(a >> 8)}
}

// bilinear interpolates the four pixels around (x, y), a position in pixel
// index units (pixel (i, j) sits at (i, j)).
func (s *sampler) bilinear(x, y float64) color.RGBA {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := float32(x-x0), float32(y-y0)
	ix, iy := int(x0), int(y0)
	p00, p10 := s.at(ix, iy), s.at(ix+1, iy)
	p01, p11 := s.at(ix, iy+1), s.at(ix+1, iy+1)
	var c [4]uint8
	for i := range c {
		top := p00[i] + (p10[i]-p00[i])*fx
		bot := p01[i] + (p11[i]-p01[i])*fx
		c[i] = uint8(min(max(top+(bot-top)*fy+0.5, 0), 255))
	}
	return color.RGBA{c[0], c[1], c[2], c[3]}
}
