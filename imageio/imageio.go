// Package imageio decodes image files that may come from strangers: it
// bounds the bytes it reads, rejects decompression bombs from the header
// before decoding any pixels, turns decoder panics into errors, and honours
// the EXIF orientation of JPEG photos so that faces come out upright.
//
// Supported formats are JPEG, PNG, GIF (first frame), BMP and WebP.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // register GIF
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"

	_ "golang.org/x/image/bmp"  // register BMP
	_ "golang.org/x/image/webp" // register WebP
)

// Limits bounds the resources spent on one image. A zero field means the
// value of [DefaultLimits].
type Limits struct {
	MaxPixels int64 // largest accepted width*height declared by the header
	MaxBytes  int64 // largest accepted encoded size in bytes
}

// DefaultLimits accepts images up to 50 megapixels and 64 MiB encoded,
// ample for photos while keeping a hostile file from exhausting memory.
var DefaultLimits = Limits{MaxPixels: 50_000_000, MaxBytes: 64 << 20}

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	return l
}

// ErrTooLarge is wrapped by errors for images over the byte or pixel limit.
var ErrTooLarge = errors.New("image too large")

// Decode reads an image from r and returns it with its format name
// ("jpeg", "png", "gif", "bmp" or "webp"). It reads at most lim.MaxBytes
// bytes, decodes the header first and refuses images whose declared
// width*height exceeds lim.MaxPixels, and reports a decoder panic as an
// error. JPEG images are rotated or flipped as their EXIF orientation tag
// says (the result is then an *image.RGBA).
func Decode(r io.Reader, lim Limits) (image.Image, string, error) {
	lim = lim.withDefaults()
	b, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading image: %w", err)
	}
	if int64(len(b)) > lim.MaxBytes {
		return nil, "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	return decodeBytes(b, lim)
}

// DecodeFile opens and decodes the image file at path like [Decode]. Errors
// name the file.
func DecodeFile(path string, lim Limits) (image.Image, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err // *PathError names the file
	}
	defer f.Close()
	img, format, err := Decode(f, lim)
	if err != nil {
		return nil, format, fmt.Errorf("%s: %w", path, err)
	}
	return img, format, nil
}

func decodeBytes(b []byte, lim Limits) (img image.Image, format string, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("corrupt %s image: decoder panicked: %v", format, r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, "", errors.New("not a JPEG, PNG, GIF, BMP or WebP image")
		}
		return nil, format, fmt.Errorf("corrupt %s header: %w", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("corrupt %s header: size %dx%d", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return nil, format, fmt.Errorf("%w: %dx%d = %d pixels, limit %d", ErrTooLarge, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	img, _, err = image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, format, fmt.Errorf("corrupt %s image: %w", format, err)
	}
	if format == "jpeg" {
		if o := JPEGOrientation(b); o > 1 {
			img = Orient(img, o)
		}
	}
	return img, format, nil
}

// ToRGBA returns img as an *image.RGBA with bounds starting at (0, 0):
// img itself if it already is one with such bounds, otherwise a copy.
func ToRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Rect, img, b.Min, draw.Src)
	return m
}
