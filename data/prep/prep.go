// Package prep turns face images into the network inputs of Levi & Hassner
// (2015): every image is decoded once, resized to Resize×Resize and kept as
// packed RGB bytes in a [Cache]; crops of Crop×Crop are then written as
// float32 NHWC (height, width, channel) RGB values on the 0..255 scale minus
// a per-channel mean, the Caffe convention.
//
// Training takes one [RandomCrop] per image and epoch (random position,
// optional mirror, brightness, contrast and small rotation); evaluation
// takes the [CenterCrop] or averages the network over the 10 crops of
// [TenCrop]. Prediction on a new face resizes it with [FromImage] and uses
// the same *Pixels functions, so training, evaluation and prediction share
// one code path.
//
// Everything random draws from a caller-supplied *rand.Rand
// (math/rand/v2), so a fixed seed reproduces the same inputs.
package prep

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/image/draw"

	"github.com/agegender/agegender/imageio"
)

// Spec is how a network's inputs are made from a face image: the one
// description of the preprocessing, stored in every model file (it is
// embedded in model.Info, and its JSON fields are the model file's
// "resize", "crop", "mean", "channels" and "framing") and used by
// training, evaluation and prediction alike.
type Spec struct {
	// Framing is where the face sits in the image the crop is cut from
	// (the face package's framing of that name); "" means FramingUTKFace.
	Framing Framing `json:"framing,omitempty"`
	// Resize is the side of the cached square image (paper: 256).
	Resize int `json:"resize"`
	// Crop is the side of the crop fed to the network (paper: 227); it
	// equals the network's input side (model.Config.Input).
	Crop int `json:"crop,omitempty"`
	// Mean is the per-channel RGB mean (0..255) subtracted from every
	// value, always in R, G, B order.
	Mean [3]float32 `json:"mean"`
	// Channels is the order of the channels in the crop: RGB (the zero
	// value) or BGR (Caffe's).
	Channels Channels `json:"channels,omitempty"`
	// Workers is the number of decoding goroutines of BuildCache (0:
	// runtime.NumCPU()); a setting of the run, not of the model.
	Workers int `json:"-"`
}

// Framing names the way a face is framed in the images a network is
// trained on.
type Framing string

// The framings of the models agegender trains.
const (
	// FramingUTKFace is UTKFace's "aligned & cropped" framing, the face
	// filling most of the image (face.UTKFace).
	FramingUTKFace Framing = "utkface"
	// FramingArcFace is InsightFace's five-point 112×112 framing
	// (face.ArcFace).
	FramingArcFace Framing = "arcface"
)

// String returns the framing's name; "utkface" for the zero value.
func (f Framing) String() string {
	if f == "" {
		return string(FramingUTKFace)
	}
	return string(f)
}

// Channels is the channel order of the network input.
type Channels int

// The channel orders.
const (
	RGB Channels = iota // red, green, blue (the zero value)
	BGR                 // blue, green, red, as Caffe reads images
)

// String returns "rgb" or "bgr".
func (c Channels) String() string {
	if c == BGR {
		return "bgr"
	}
	return "rgb"
}

// ParseChannels parses "rgb" or "bgr" (any case).
func ParseChannels(s string) (Channels, error) {
	switch strings.ToLower(s) {
	case "rgb", "":
		return RGB, nil
	case "bgr":
		return BGR, nil
	}
	return 0, fmt.Errorf("prep: unknown channel order %q; use rgb or bgr", s)
}

// MarshalText writes the order's name (String).
func (c Channels) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (c *Channels) UnmarshalText(b []byte) error {
	v, err := ParseChannels(string(b))
	*c = v
	return err
}

// PaperSpec returns the sizes of the paper: images resized to 256×256
// and 227×227 crops. Mean is zero: set it from [MeanOf] on the training
// cache (or from the Caffe mean file).
//
// For training on a CPU, smaller sizes with about the same crop/resize
// ratio (227/256 ≈ 0.89) keep the same augmentation behaviour at a
// fraction of the cost, e.g. Resize 72 with Crop 64 (0.89), or Resize 36
// with Crop 32.
func PaperSpec() Spec { return Spec{Resize: 256, Crop: 227} }

// ResizeFor returns the side images are resized to before a crop×crop
// crop is cut, keeping the paper's ratio 256/227 (rounded to the nearest
// pixel): 256 for 227, 72 for 64.
func ResizeFor(crop int) int { return (crop*256 + 113) / 227 }

// Validate reports whether the sizes are usable: 0 < Crop <= Resize.
func (c Spec) Validate() error {
	if c.Resize <= 0 || c.Crop <= 0 || c.Crop > c.Resize {
		return fmt.Errorf("prep: config Resize %d, Crop %d: want 0 < Crop <= Resize", c.Resize, c.Crop)
	}
	return nil
}

// CropLen returns Crop*Crop*3, the length of one crop's float32 buffer.
func (c Spec) CropLen() int { return c.Crop * c.Crop * 3 }

// Cache holds decoded images resized to Resize×Resize as packed RGB bytes
// (row by row, 3 bytes a pixel). It is read-only once built and safe for
// concurrent use.
type Cache struct {
	size  int
	pix   [][]uint8
	index []int
}

// Len returns the number of cached images.
func (c *Cache) Len() int { return len(c.pix) }

// Size returns the side of the cached images (Spec.Resize).
func (c *Cache) Size() int { return c.size }

// Index returns the position in the paths given to [BuildCache] of cached
// image i; images that failed to decode are absent, so Index maps cache
// positions back to samples.
func (c *Cache) Index(i int) int { return c.index[i] }

// Pixels returns the packed RGB bytes of cached image i, of length
// Resize*Resize*3. The caller must not modify them.
func (c *Cache) Pixels(i int) []uint8 { return c.pix[i] }

// BuildCache decodes every file in paths with [imageio.DecodeFile] (with
// imageio.DefaultLimits), using cfg.Workers goroutines, and resizes it with
// [FromImage]. Images that cannot be decoded are left out of the cache and
// returned as errors naming the file, in path order. progress, if not nil,
// is called from the calling goroutine after each image with the number
// done so far. An invalid cfg gives a nil cache and its error; so does
// cancelling ctx, which stops the decoding after the images in flight
// (the error is ctx's).
func BuildCache(ctx context.Context, paths []string, cfg Spec, progress func(done, total int)) (*Cache, []error) {
	if err := cfg.Validate(); err != nil {
		return nil, []error{err}
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	pix := make([][]uint8, len(paths))
	errs := make([]error, len(paths))
	jobs := make(chan int)
	done := make(chan struct{}, len(paths)) // never blocks a worker
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				img, _, err := imageio.DecodeFile(paths[i], imageio.DefaultLimits)
				if err != nil {
					errs[i] = fmt.Errorf("prep: %w", err)
				} else {
					pix[i] = FromImage(img, cfg)
				}
				done <- struct{}{}
			}
		})
	}
	stop := make(chan struct{})
	go func() {
		defer close(jobs)
		for i := range paths {
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	for n := 1; n <= len(paths); n++ {
		select {
		case <-done:
		case <-ctx.Done():
			close(stop) // the workers finish the images in flight
			wg.Wait()
			return nil, []error{ctx.Err()}
		}
		if progress != nil {
			progress(n, len(paths))
		}
	}
	wg.Wait()

	c := &Cache{size: cfg.Resize}
	var failed []error
	for i, p := range pix {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		c.pix = append(c.pix, p)
		c.index = append(c.index, i)
	}
	return c, failed
}

// FromImage resizes img to cfg.Resize×cfg.Resize (stretching a non-square
// image, as Caffe's resize does) with Catmull-Rom interpolation and returns
// it as packed RGB bytes, the format of [Cache.Pixels]. Alpha is ignored.
// An [imageio.Reducer] (a large JPEG in a build with libjpeg-turbo) is
// read at the coarsest scale with at least cfg.Resize pixels a side.
func FromImage(img image.Image, cfg Spec) []uint8 {
	n := cfg.Resize
	img = imageio.Reduced(img, n) // a large JPEG: read at a scale near n
	b := img.Bounds()
	var m *image.RGBA
	if b.Dx() == n && b.Dy() == n {
		m = imageio.ToRGBA(img)
	} else {
		m = image.NewRGBA(image.Rect(0, 0, n, n))
		draw.CatmullRom.Scale(m, m.Rect, img, b, draw.Src, nil)
	}
	return PackRGB(m)
}

// PackRGB returns m's pixels as packed RGB bytes, row-major, dropping the
// alpha channel: the format of [Cache.Pixels].
func PackRGB(m *image.RGBA) []uint8 {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := make([]uint8, w*h*3)
	for y := range h {
		row := m.Pix[y*m.Stride:]
		for x := range w {
			copy(out[(y*w+x)*3:(y*w+x)*3+3], row[4*x:4*x+3])
		}
	}
	return out
}

// MeanOf returns the per-channel RGB mean of all cached pixels, on the
// 0..255 scale, for Spec.Mean. An empty cache gives zeros.
func MeanOf(c *Cache) [3]float32 {
	var sum [3]float64
	var n int
	for _, p := range c.pix {
		var s [3]uint64 // exact per image
		for i := 0; i < len(p); i += 3 {
			s[0] += uint64(p[i])
			s[1] += uint64(p[i+1])
			s[2] += uint64(p[i+2])
		}
		for k := range s {
			sum[k] += float64(s[k])
		}
		n += len(p) / 3
	}
	var m [3]float32
	if n > 0 {
		for k := range m {
			m[k] = float32(sum[k] / float64(n))
		}
	}
	return m
}

// NumTenCrops is the number of crops written by [TenCrop].
const NumTenCrops = 10

// CenterCrop writes the centred crop of cached image i into dst; see
// [CenterCropPixels].
func CenterCrop(c *Cache, i int, cfg Spec, dst []float32) {
	CenterCropPixels(c.pix[i], cfg, dst)
}

// TenCrop writes the 10 crops of cached image i into dst; see
// [TenCropPixels].
func TenCrop(c *Cache, i int, cfg Spec, dst [][]float32) {
	TenCropPixels(c.pix[i], cfg, dst)
}

// RandomCrop writes a random augmented crop of cached image i into dst;
// see [RandomCropPixels].
func RandomCrop(c *Cache, i int, cfg Spec, aug Augment, rng *rand.Rand, dst []float32) {
	RandomCropPixels(c.pix[i], cfg, aug, rng, dst)
}

// CenterCropPixels writes the Crop×Crop crop at offset ((Resize-Crop)/2,
// (Resize-Crop)/2) of pix (packed RGB, Resize×Resize) into dst as float32
// HWC values minus cfg.Mean. It panics if pix or dst has the wrong length.
func CenterCropPixels(pix []uint8, cfg Spec, dst []float32) {
	checkLens(pix, cfg, dst)
	o := (cfg.Resize - cfg.Crop) / 2
	cropAt(pix, cfg, o, o, false, dst)
	order(cfg, dst)
}

// TenCropPixels writes the 10-crop over-sampling of pix into dst[0..9],
// each of length Crop*Crop*3, in this order:
//
//	0 top-left  1 top-right  2 bottom-left  3 bottom-right  4 centre
//	5..9        the same five crops mirrored left to right
//
// so dst[5+k] is the horizontal mirror of dst[k]. It panics if dst has
// fewer than 10 buffers or a buffer has the wrong length.
func TenCropPixels(pix []uint8, cfg Spec, dst [][]float32) {
	if len(dst) < NumTenCrops {
		panic(fmt.Sprintf("prep: TenCrop needs %d buffers, got %d", NumTenCrops, len(dst)))
	}
	e := cfg.Resize - cfg.Crop
	offs := [5][2]int{{0, 0}, {e, 0}, {0, e}, {e, e}, {e / 2, e / 2}}
	for k, o := range offs {
		checkLens(pix, cfg, dst[k])
		checkLens(pix, cfg, dst[k+5])
		cropAt(pix, cfg, o[0], o[1], false, dst[k])
		cropAt(pix, cfg, o[0], o[1], true, dst[k+5])
		order(cfg, dst[k])
		order(cfg, dst[k+5])
	}
}

// MirrorCropPixels writes the mirror image of the centre crop of pix
// into dst.
func MirrorCropPixels(pix []uint8, cfg Spec, dst []float32) {
	checkLens(pix, cfg, dst)
	e := cfg.Resize - cfg.Crop
	cropAt(pix, cfg, e/2, e/2, true, dst)
	order(cfg, dst)
}

// order puts a crop written in RGB order into cfg.Channels order.
func order(cfg Spec, dst []float32) {
	if cfg.Channels != BGR {
		return
	}
	for i := 0; i+2 < len(dst); i += 3 {
		dst[i], dst[i+2] = dst[i+2], dst[i]
	}
}

func checkLens(pix []uint8, cfg Spec, dst []float32) {
	if len(pix) != cfg.Resize*cfg.Resize*3 {
		panic(fmt.Sprintf("prep: image has %d bytes, want Resize*Resize*3 = %d", len(pix), cfg.Resize*cfg.Resize*3))
	}
	if len(dst) != cfg.CropLen() {
		panic(fmt.Sprintf("prep: crop buffer has %d floats, want Crop*Crop*3 = %d", len(dst), cfg.CropLen()))
	}
}

// cropAt copies the crop at (ox, oy), optionally mirrored, minus the mean.
func cropAt(pix []uint8, cfg Spec, ox, oy int, mirror bool, dst []float32) {
	r, n := cfg.Resize, cfg.Crop
	m0, m1, m2 := cfg.Mean[0], cfg.Mean[1], cfg.Mean[2]
	for y := range n {
		src := pix[((oy+y)*r+ox)*3 : ((oy+y)*r+ox+n)*3]
		d := dst[y*n*3 : (y+1)*n*3]
		for x := range n {
			sx := x
			if mirror {
				sx = n - 1 - x
			}
			s := src[sx*3 : sx*3+3]
			d[x*3] = float32(s[0]) - m0
			d[x*3+1] = float32(s[1]) - m1
			d[x*3+2] = float32(s[2]) - m2
		}
	}
}

// Augment sets the random distortions of [RandomCropPixels]. The zero
// value only picks a random crop position.
type Augment struct {
	Mirror     bool    // mirror left to right with probability 1/2
	Brightness float32 // max additive delta in 0..255 units, e.g. 20
	Contrast   float32 // max relative contrast change, e.g. 0.2
	RotateDeg  float32 // max absolute rotation in degrees, e.g. 10; 0 disables
}

// DefaultAugment returns mirroring, brightness ±20, contrast ±20% and
// rotation up to ±10 degrees.
func DefaultAugment() Augment {
	return Augment{Mirror: true, Brightness: 20, Contrast: 0.2, RotateDeg: 10}
}

// RandomCropPixels writes a random Crop×Crop crop of pix into dst, minus
// cfg.Mean. It draws, in this order from rng: the x and y offset (uniform
// in 0..Resize-Crop), then the mirror coin if aug.Mirror, a brightness
// delta b uniform in ±aug.Brightness if non-zero, a contrast factor k
// uniform in 1±aug.Contrast if non-zero, and an angle uniform in
// ±aug.RotateDeg if non-zero. Each value v (0..255) becomes
//
//	clamp((v-127.5)*k + 127.5 + b, 0, 255) - Mean
//
// With a rotation, the crop samples the whole Resize×Resize image rotated
// about the crop's centre, with bilinear interpolation and edge pixels
// repeated outside the image. The same rng state gives the same crop.
func RandomCropPixels(pix []uint8, cfg Spec, aug Augment, rng *rand.Rand, dst []float32) {
	checkLens(pix, cfg, dst)
	e := cfg.Resize - cfg.Crop
	ox, oy := rng.IntN(e+1), rng.IntN(e+1)
	mirror := aug.Mirror && rng.IntN(2) == 1
	var bright float32
	contrast := float32(1)
	var angle float64
	if aug.Brightness != 0 {
		bright = (2*rng.Float32() - 1) * aug.Brightness
	}
	if aug.Contrast != 0 {
		contrast = 1 + (2*rng.Float32()-1)*aug.Contrast
	}
	if aug.RotateDeg != 0 {
		angle = float64((2*rng.Float32()-1)*aug.RotateDeg) * math.Pi / 180
	}
	if angle == 0 {
		cropAt(pix, cfg, ox, oy, mirror, dst)
		if bright != 0 || contrast != 1 {
			jitter(dst, cfg.Mean, bright, contrast)
		}
	} else {
		rotatedCrop(pix, cfg, ox, oy, mirror, angle, bright, contrast, dst)
	}
	order(cfg, dst)
}

// jitter applies brightness and contrast to a crop that already had the
// mean subtracted.
func jitter(dst []float32, mean [3]float32, bright, contrast float32) {
	for i := range dst {
		m := mean[i%3]
		dst[i] = adjust(dst[i]+m, bright, contrast) - m
	}
}

func adjust(v, bright, contrast float32) float32 {
	v = (v-127.5)*contrast + 127.5 + bright
	return min(max(v, 0), 255)
}

// rotatedCrop samples the crop at (ox, oy) of the image rotated by angle
// radians about the crop centre, then mirrors, jitters and subtracts the
// mean, without allocating.
func rotatedCrop(pix []uint8, cfg Spec, ox, oy int, mirror bool, angle float64, bright, contrast float32, dst []float32) {
	r, n := cfg.Resize, cfg.Crop
	half := float64(n-1) / 2
	cx, cy := float64(ox)+half, float64(oy)+half
	sin, cos := math.Sincos(angle)
	last := float64(r - 1)
	for y := range n {
		dy := float64(y) - half
		for x := range n {
			xx := x
			if mirror {
				xx = n - 1 - x
			}
			dx := float64(xx) - half
			sx := min(max(cx+cos*dx-sin*dy, 0), last)
			sy := min(max(cy+sin*dx+cos*dy, 0), last)
			x0, y0 := int(sx), int(sy)
			x1, y1 := min(x0+1, r-1), min(y0+1, r-1)
			fx, fy := float32(sx-float64(x0)), float32(sy-float64(y0))
			p00, p01 := (y0*r+x0)*3, (y0*r+x1)*3
			p10, p11 := (y1*r+x0)*3, (y1*r+x1)*3
			d := dst[(y*n+x)*3 : (y*n+x)*3+3]
			for c := range 3 {
				top := float32(pix[p00+c])*(1-fx) + float32(pix[p01+c])*fx
				bot := float32(pix[p10+c])*(1-fx) + float32(pix[p11+c])*fx
				v := top*(1-fy) + bot*fy
				if bright != 0 || contrast != 1 {
					v = adjust(v, bright, contrast)
				}
				d[c] = v - cfg.Mean[c]
			}
		}
	}
}
