// Package augment distorts aligned face crops so that training faces look
// like faces cut from photos: framed a little differently, tilted, lit and
// coloured otherwise, blurred, re-compressed and partly covered.
//
// A Spec draws every distortion from its own range; Apply renders one
// distorted view of an image at the network's input size. Views are
// reproducible: the same image, size and random source give the same bytes,
// and [Seeded] derives an independent source for each (seed, image, view),
// so parallel workers need not run in order.
//
// The ranges of [Default] are those of the accuracy issue (scale ±15 %,
// shift ±10 %, roll ±15°, mirror, brightness/contrast/saturation,
// grayscale, blur, JPEG re-compression, small occlusions).
package augment

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/agegender/agegender/data/prep"
	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// Spec holds the ranges of the distortions. Each value is drawn uniformly
// from its range per view; a zero field disables that distortion.
type Spec struct {
	// Scale is the largest relative change of the face's size: 0.15 draws
	// a zoom factor in [0.85, 1.15].
	Scale float64
	// Shift is the largest offset of the crop's centre, as a fraction of
	// the crop's side, along each axis.
	Shift float64
	// Roll is the largest in-plane rotation, in degrees.
	Roll float64
	// Mirror flips left to right with probability 1/2.
	Mirror bool
	// Brightness, Contrast and Saturation are the largest relative changes:
	// 0.25 multiplies brightness by a factor in [0.75, 1.25], and so on.
	Brightness, Contrast, Saturation float64
	// Gray is the probability of turning the view to grayscale.
	Gray float64
	// Blur is the probability of a Gaussian blur; BlurSigma its largest
	// standard deviation in pixels of the output.
	Blur, BlurSigma float64
	// JPEG is the probability of re-compressing the view as a JPEG with a
	// quality drawn from [JPEGQuality, 95].
	JPEG        float64
	JPEGQuality int
	// Occlude is the probability of covering a random rectangle of the
	// view with a flat random colour; OccludeSize its largest side as a
	// fraction of the view's side.
	Occlude, OccludeSize float64
}

// Default returns the ranges of the accuracy issue: scale ±15 %, shift
// ±10 %, roll ±15°, mirror, brightness/contrast ±25 %, saturation ±30 %,
// grayscale 10 %, blur 20 % (σ ≤ 1.5 px), JPEG 30 % (quality 30–95),
// occlusion 20 % (side ≤ 35 %).
func Default() Spec {
	return Spec{Scale: 0.15, Shift: 0.10, Roll: 15, Mirror: true,
		Brightness: 0.25, Contrast: 0.25, Saturation: 0.3, Gray: 0.1,
		Blur: 0.2, BlurSigma: 1.5, JPEG: 0.3, JPEGQuality: 30,
		Occlude: 0.2, OccludeSize: 0.35}
}

// String spells every range, so that a feature cache keyed on it changes
// when any range does.
func (s Spec) String() string {
	return fmt.Sprintf("scale=%g shift=%g roll=%g mirror=%t bright=%g contrast=%g sat=%g gray=%g blur=%g/%g jpeg=%g/%d occlude=%g/%g",
		s.Scale, s.Shift, s.Roll, s.Mirror, s.Brightness, s.Contrast, s.Saturation, s.Gray,
		s.Blur, s.BlurSigma, s.JPEG, s.JPEGQuality, s.Occlude, s.OccludeSize)
}

// Seeded returns the random source of one view of one image: a PCG
// generator seeded by (seed, image, view), independent of any other view's.
func Seeded(seed int64, image, view int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(image)<<16|uint64(view)))
}

// Apply renders one distorted view of img as packed RGB bytes,
// size×size×3, row-major. With the zero Spec it is img resized to
// size×size (bilinear), the framing the networks are trained on. Pixels
// the geometric distortion brings in from outside img take img's mean
// colour. It panics if size < 1.
func (s Spec) Apply(img image.Image, size int, rng *rand.Rand) []uint8 {
	if size < 1 {
		panic(fmt.Sprintf("augment: size %d < 1", size))
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	b := img.Bounds()
	fill := meanColor(img)
	draw.Draw(dst, dst.Rect, image.NewUniform(fill), image.Point{}, draw.Src)

	// Geometry: the output's centre maps to the source's centre plus the
	// shift; the output's side covers the source's side divided by the zoom,
	// turned by the roll. s2d maps source to destination pixels.
	zoom := 1 + uniform(rng, s.Scale)
	dx, dy := uniform(rng, s.Shift), uniform(rng, s.Shift)
	theta := uniform(rng, s.Roll) * math.Pi / 180
	mirror := s.Mirror && rng.IntN(2) == 1
	sw, sh := float64(b.Dx()), float64(b.Dy())
	cx, cy := float64(b.Min.X)+sw/2+dx*sw, float64(b.Min.Y)+sh/2+dy*sh
	kx, ky := zoom*float64(size)/sw, zoom*float64(size)/sh
	cos, sin := math.Cos(theta), math.Sin(theta)
	mx := 1.0
	if mirror {
		mx = -1
	}
	// d = C_dst + M·R·K·(p − c), with K the scale, R the roll and M the mirror.
	a00, a01 := mx*cos*kx, -mx*sin*ky
	a10, a11 := sin*kx, cos*ky
	half := float64(size) / 2
	s2d := f64.Aff3{a00, a01, half - a00*cx - a01*cy, a10, a11, half - a10*cx - a11*cy}
	draw.BiLinear.Transform(dst, s2d, img, b, draw.Over, nil)

	pix := prep.PackRGB(dst)
	if rng.Float64() < s.Occlude && s.OccludeSize > 0 {
		occlude(pix, size, s.OccludeSize, rng)
	}
	colour(pix, 1+uniform(rng, s.Brightness), 1+uniform(rng, s.Contrast), 1+uniform(rng, s.Saturation), rng.Float64() < s.Gray)
	if rng.Float64() < s.Blur && s.BlurSigma > 0 {
		gaussianBlur(pix, size, 0.3+rng.Float64()*(s.BlurSigma-0.3))
	}
	if rng.Float64() < s.JPEG {
		pix = recompress(pix, size, s.JPEGQuality+rng.IntN(max(1, 96-s.JPEGQuality)))
	}
	return pix
}

// uniform draws from [−r, r].
func uniform(rng *rand.Rand, r float64) float64 { return (2*rng.Float64() - 1) * r }

// meanColor is img's mean colour over a coarse grid of pixels.
func meanColor(img image.Image) color.RGBA {
	b := img.Bounds()
	var sr, sg, sb, n float64
	step := max(1, min(b.Dx(), b.Dy())/32)
	for y := b.Min.Y; y < b.Max.Y; y += step {
		for x := b.Min.X; x < b.Max.X; x += step {
			r, g, bl, _ := img.At(x, y).RGBA()
			sr, sg, sb, n = sr+float64(r>>8), sg+float64(g>>8), sb+float64(bl>>8), n+1
		}
	}
	if n == 0 {
		return color.RGBA{128, 128, 128, 255}
	}
	return color.RGBA{uint8(sr / n), uint8(sg / n), uint8(sb / n), 255}
}

// colour scales brightness, contrast (around the view's mean luma) and
// saturation (around each pixel's luma, ITU-R BT.601 weights), or makes
// the view gray.
func colour(pix []uint8, bright, contrast, sat float64, gray bool) {
	if gray {
		sat = 0
	}
	if bright == 1 && contrast == 1 && sat == 1 {
		return
	}
	var sum float64
	for i := 0; i < len(pix); i += 3 {
		sum += luma(pix[i:])
	}
	mean := sum / float64(len(pix)/3) * bright
	for i := 0; i < len(pix); i += 3 {
		l := luma(pix[i:]) * bright
		for c := range 3 {
			v := float64(pix[i+c]) * bright
			v = l + (v-l)*sat
			v = mean + (v-mean)*contrast
			pix[i+c] = clamp(v)
		}
	}
}

func luma(p []uint8) float64 { return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2]) }

func clamp(v float64) uint8 { return uint8(math.Round(math.Max(0, math.Min(255, v)))) }

// gaussianBlur blurs packed RGB pixels in place with a separable Gaussian
// of standard deviation sigma pixels (kernel radius ⌈3σ⌉, edges clamped).
func gaussianBlur(pix []uint8, size int, sigma float64) {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float64, len(pix))
	for y := range size {
		for x := range size {
			for c := range 3 {
				var v float64
				for i, w := range k {
					xx := min(size-1, max(0, x+i-r))
					v += w * float64(pix[(y*size+xx)*3+c])
				}
				tmp[(y*size+x)*3+c] = v
			}
		}
	}
	for y := range size {
		for x := range size {
			for c := range 3 {
				var v float64
				for i, w := range k {
					yy := min(size-1, max(0, y+i-r))
					v += w * tmp[(yy*size+x)*3+c]
				}
				pix[(y*size+x)*3+c] = clamp(v)
			}
		}
	}
}

// recompress encodes the view as a JPEG of the given quality (image/jpeg,
// 4:2:0 chroma) and decodes it again, with its blocking and ringing.
func recompress(pix []uint8, size, quality int) []uint8 {
	m := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range size * size {
		copy(m.Pix[4*i:4*i+3], pix[3*i:3*i+3])
		m.Pix[4*i+3] = 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		return pix // cannot happen for an in-memory RGBA image
	}
	d, err := jpeg.Decode(&buf)
	if err != nil {
		return pix
	}
	out := image.NewRGBA(m.Rect)
	draw.Draw(out, out.Rect, d, image.Point{}, draw.Src)
	return prep.PackRGB(out)
}

// occlude covers a rectangle with sides up to frac×size with a flat
// random colour (a hand, a microphone, a sticker).
func occlude(pix []uint8, size int, frac float64, rng *rand.Rand) {
	maxSide := max(1, int(frac*float64(size)))
	w, h := 1+rng.IntN(maxSide), 1+rng.IntN(maxSide)
	x0, y0 := rng.IntN(size-w+1), rng.IntN(size-h+1)
	c := [3]uint8{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))}
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			copy(pix[(y*size+x)*3:], c[:])
		}
	}
}
