// Package imageio decodes image files that may come from strangers: it
// tells the format from the content, bounds the bytes it reads, rejects
// decompression bombs from the header before decoding any pixels, turns
// decoder panics into errors, honours the EXIF orientation of JPEG photos
// so that faces come out upright, and composites transparent images onto
// white as viewers show them.
//
// Supported formats are JPEG, PNG, GIF (first frame), BMP and WebP. HEIC,
// AVIF and a few other image formats are recognised and refused with
// [ErrUnsupportedFormat]; see [Sniff].
//
// Built with the tag libjpeg (and cgo, against the system's libjpeg-turbo:
// Debian's libjpeg62-turbo-dev), JPEGs of more than [LargeJPEGPixels] are
// decoded by libjpeg-turbo, which scales while decoding: such a photo is
// a [Reducer] that decodes a 1/8-scale copy and the regions asked for,
// never its full-size pixels unless At is used. ./setup.sh builds that
// way when the library is installed. Other builds use Go's image/jpeg
// only; [ScaledJPEG] tells which.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// Limits bounds the resources spent on one image. A zero MaxPixels or
// MaxBytes means the value of [DefaultLimits].
type Limits struct {
	// MaxPixels is the largest width×height returned. Larger images are
	// refused with [ErrTooLarge], or downscaled when MaxDecodeBytes allows.
	MaxPixels int64
	// MaxBytes is the largest accepted encoded size in bytes.
	MaxBytes int64
	// MaxDecodeBytes, when positive, turns refusal into downscaling: an
	// image over MaxPixels whose full-size decoded pixels take at most
	// MaxDecodeBytes bytes (estimated from the header: 3 bytes per pixel
	// for JPEG, 4 for 8-bit RGBA, 8 for 16-bit; see [DefaultDecodeBytes])
	// is decoded at full size (Go's decoders cannot shrink while decoding)
	// and shrunk to fit MaxPixels by an area average; only larger images
	// are refused. The peak memory of one such decode is then about
	// MaxDecodeBytes + 4×MaxPixels + the encoded size. Zero refuses every
	// image over MaxPixels. A build with libjpeg-turbo (build tag libjpeg)
	// accepts the same images but decodes a JPEG of more than 2
	// megapixels over MaxPixels at the coarsest DCT scale (1/2, 1/4 or
	// 1/8) that keeps MaxPixels (at least 1/2), 4 bytes a pixel, so its
	// full-size pixels never exist.
	MaxDecodeBytes int64
	// Large, when set, is held while an image over MaxPixels is decoded
	// and downscaled, so that callers decoding on many goroutines keep at
	// most one such full-size image in memory at a time. Share one lock
	// (a *sync.Mutex) among the goroutines.
	Large sync.Locker
}

// DefaultLimits accepts images up to 50 megapixels and 64 MiB encoded,
// ample for photos while keeping a hostile file from exhausting memory.
// It refuses larger images (MaxDecodeBytes is zero).
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

// Errors wrapped by the errors of this package, for errors.Is. The full
// message says more (the size, the format's name, what to do).
var (
	// ErrTooLarge: over the byte limit, or over the pixel limit (and the
	// decode memory bound when downscaling).
	ErrTooLarge = errors.New("image too large")
	// ErrEmpty: the file or body has zero bytes.
	ErrEmpty = errors.New("empty file")
	// ErrUnsupportedFormat: an image format that is recognised but not
	// decoded, such as HEIC or AVIF ("format not supported: HEIC ...").
	ErrUnsupportedFormat = errors.New("format not supported")
	// ErrNotImage: the content is no image format known to [Sniff].
	ErrNotImage = errors.New("not an image")
	// ErrCorrupt: the signature is that of a supported format but the
	// header or the pixel data cannot be decoded (truncated, damaged).
	ErrCorrupt = errors.New("corrupt image")
)

// Info describes a decoded image.
type Info struct {
	// Format is "jpeg", "png", "gif", "bmp" or "webp".
	Format string
	// Width and Height are the photo's size as displayed (after EXIF
	// orientation) before any downscaling: the coordinate system in which
	// to report positions to the user. The returned image is smaller when
	// Downscaled; scale its coordinates by Width/Bounds().Dx().
	Width, Height int
	// Downscaled tells that the image was over Limits.MaxPixels and was
	// shrunk to fit it.
	Downscaled bool
	// Flattened tells that the image had transparent pixels, composited
	// onto white (see [Flatten]).
	Flattened bool
}

// codec holds one format's decoder functions.
type codec struct {
	decode func(io.Reader) (image.Image, error)
	config func(io.Reader) (image.Config, error)
}

var codecs = map[string]codec{
	"jpeg": {jpeg.Decode, jpeg.DecodeConfig},
	"png":  {png.Decode, png.DecodeConfig},
	"gif":  {gif.Decode, gif.DecodeConfig},
	"bmp":  {bmp.Decode, bmp.DecodeConfig},
	"webp": {webp.Decode, webp.DecodeConfig},
}

// Decode reads an image from r and returns it with its format name
// ("jpeg", "png", "gif", "bmp" or "webp"), like [DecodeInfo].
func Decode(r io.Reader, lim Limits) (image.Image, string, error) {
	img, info, err := DecodeInfo(r, lim)
	return img, info.Format, err
}

// DecodeInfo reads an image from r and returns it with what [Info] tells.
// It reads at most lim.MaxBytes bytes and tells the format from the first
// bytes ([Sniff]: an empty input wraps [ErrEmpty], HEIC or AVIF
// [ErrUnsupportedFormat], anything else unknown [ErrNotImage]). It decodes
// the header first and refuses, or with lim.MaxDecodeBytes downscales,
// images whose declared width×height exceeds lim.MaxPixels, and reports a
// decoder panic as an error wrapping [ErrCorrupt]. JPEG images are rotated
// or flipped as their EXIF orientation tag says, and transparent pixels
// are composited onto white ([Flatten]). The result is an *image.RGBA when
// it was oriented or downscaled, otherwise the decoder's own image type;
// in a build with libjpeg-turbo, a sequential JPEG of more than
// [LargeJPEGPixels] within MaxPixels is a [Reducer] that decodes the parts
// asked for.
func DecodeInfo(r io.Reader, lim Limits) (image.Image, Info, error) {
	lim = lim.withDefaults()
	b, err := readAll(r, lim.MaxBytes)
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading image: %w", err)
	}
	if int64(len(b)) > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	return decodeBytes(b, lim)
}

// DecodeFile opens and decodes the image file at path like [Decode]. Errors
// name the file.
func DecodeFile(path string, lim Limits) (image.Image, string, error) {
	img, info, err := DecodeFileInfo(path, lim)
	return img, info.Format, err
}

// DecodeFileInfo opens and decodes the image file at path like
// [DecodeInfo]. It checks the file's size before reading it and reads it
// in one piece. Errors name the file.
func DecodeFileInfo(path string, lim Limits) (image.Image, Info, error) {
	lim = lim.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, err // *PathError names the file
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, Info{}, err
	}
	if !st.Mode().IsRegular() {
		return nil, Info{}, fmt.Errorf("%s: %w: not a regular file", path, ErrNotImage)
	}
	if st.Size() > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%s: %w: %d bytes, limit %d", path, ErrTooLarge, st.Size(), lim.MaxBytes)
	}
	// One read into a buffer of the file's size (plus one byte to see a
	// file that grew); no doubling copies as in io.ReadAll.
	b := make([]byte, st.Size()+1)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if int64(n) > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, lim.MaxBytes)
	}
	img, info, err := decodeBytes(b[:n], lim)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return img, info, nil
}

// readAll reads r to its end or to max+1 bytes. When r tells its size (a
// regular *os.File, a *bytes.Reader) it reads into one buffer of that size
// plus one byte: io.ReadAll's doubling buffers cost a 4 MB photo about
// 50 ms of copies and page faults in a fresh process.
func readAll(r io.Reader, max int64) ([]byte, error) {
	size := int64(-1)
	switch v := r.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := seekOffset(r); err == nil {
				size = st.Size() - off
			}
		}
	case interface{ Len() int }:
		size = int64(v.Len())
	}
	if size < 0 || size > max {
		return io.ReadAll(io.LimitReader(r, max+1))
	}
	b := make([]byte, size+1)
	n, err := io.ReadFull(r, b)
	if err == nil { // more than its size said (a growing file): read on
		rest, err := io.ReadAll(io.LimitReader(r, max+1-int64(n)))
		return append(b[:n], rest...), err
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// seekOffset is the current offset of r when it is an io.Seeker (0
// otherwise: a file read from its start).
func seekOffset(r io.Reader) (int64, error) {
	if s, ok := r.(io.Seeker); ok {
		return s.Seek(0, io.SeekCurrent)
	}
	return 0, nil
}

// truncated returns a note for a decode error when the file looks cut
// short (a partial download or copy): a JPEG without its end-of-image
// marker, a PNG without its IEND chunk, or data that ended early.
func truncated(format string, b []byte, err error) string {
	const note = " (the file looks truncated: it ends before the image does; copy or download it again)"
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return note
	}
	// A JPEG's end-of-image marker follows its last scan (an EXIF
	// thumbnail before the scans has one of its own; scan data cannot hold
	// the bytes FF D9). Either end may be followed by padding or another
	// program's data.
	if format == "jpeg" {
		if sos := bytes.LastIndex(b, []byte{0xFF, 0xDA}); sos >= 0 && !bytes.Contains(b[sos:], []byte{0xFF, 0xD9}) {
			return note
		}
	}
	if format == "png" && !bytes.Contains(b[max(0, len(b)-1<<16):], []byte("IEND")) {
		return note
	}
	return ""
}

func decodeBytes(b []byte, lim Limits) (img image.Image, info Info, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %s decoder panicked: %v", ErrCorrupt, info.Format, r)
		}
	}()
	info.Format, err = Sniff(b[:min(len(b), SniffLen)])
	if err != nil {
		return nil, info, err
	}
	c := codecs[info.Format]
	cfg, err := c.config(bytes.NewReader(b))
	var unsupported jpeg.UnsupportedError
	if errors.As(err, &unsupported) {
		// A valid JPEG with a feature Go's decoder lacks (arithmetic
		// coding, 12-bit samples, lossless): not damaged.
		return nil, info, fmt.Errorf("%w: JPEG with a feature Go's decoder lacks (%v): save it as a baseline or progressive JPEG", ErrUnsupportedFormat, err)
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s header: %v%s", ErrCorrupt, info.Format, err, truncated(info.Format, b, err))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, info, fmt.Errorf("%w: %s header: size %dx%d", ErrCorrupt, info.Format, cfg.Width, cfg.Height)
	}
	orient := 1
	if info.Format == "jpeg" {
		orient = JPEGOrientation(b)
	}
	info.Width, info.Height = cfg.Width, cfg.Height
	if orient >= 5 {
		info.Width, info.Height = cfg.Height, cfg.Width
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if ScaledJPEG && info.Format == "jpeg" && px > LargeJPEGPixels {
		if img, ok := decodeLargeJPEG(b, cfg, orient, lim, &info); ok {
			return img, info, nil
		}
		// Damaged data or CMYK: image/jpeg decides, as in other builds.
	}
	if px > lim.MaxPixels {
		if lim.MaxDecodeBytes <= 0 {
			return nil, info, fmt.Errorf("%w: %dx%d = %d pixels, limit %d", ErrTooLarge, cfg.Width, cfg.Height, px, lim.MaxPixels)
		}
		if need := decodedBytes(cfg.Width, cfg.Height, cfg.ColorModel); need > lim.MaxDecodeBytes {
			return nil, info, fmt.Errorf("%w: %dx%d = %d pixels need about %d MiB to decode before downscaling, limit %d MiB",
				ErrTooLarge, cfg.Width, cfg.Height, px, need>>20, lim.MaxDecodeBytes>>20)
		}
		if lim.Large != nil {
			lim.Large.Lock()
			defer lim.Large.Unlock()
		}
		info.Downscaled = true
	}
	img, err = c.decode(bytes.NewReader(b))
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s data: %v%s", ErrCorrupt, info.Format, err, truncated(info.Format, b, err))
	}
	if info.Downscaled {
		info.Flattened = !isOpaque(img)
		dw, dh := fitPixels(img.Bounds().Dx(), img.Bounds().Dy(), lim.MaxPixels)
		img = downscale(img, dw, dh) // opaque, so Flatten below is a no-op
	} else {
		img, info.Flattened = Flatten(img)
	}
	return Orient(img, orient), info, nil
}

// decodeLargeJPEG decodes a JPEG of more than LargeJPEGPixels with
// libjpeg-turbo:
//   - within lim.MaxPixels, as a [Reducer] that decodes the parts asked
//     for; a progressive JPEG, whose every part costs a pass over all of
//     its scans, whole at full size (one pass, about 2.5 times faster than
//     image/jpeg);
//   - over it (when lim.MaxDecodeBytes allows downscaling), at the
//     coarsest DCT scale (1/2, 1/4 or 1/8) that keeps at least
//     lim.MaxPixels, then shrunk to fit by an area average; at 1/2 when
//     even that is under the limit (a photo of less than 4 times the
//     limit, which then ends up with a quarter to a whole of it), so that
//     the full-size pixels never exist.
//
// It reports false when libjpeg-turbo cannot decode b cleanly (damaged
// data, CMYK): image/jpeg then decides.
func decodeLargeJPEG(b []byte, cfg image.Config, orient int, lim Limits, info *Info) (image.Image, bool) {
	px := int64(cfg.Width) * int64(cfg.Height)
	if px <= lim.MaxPixels {
		// A progressive file is decoded whole (below): only when it holds
		// at least a byte per 256 pixels (photos hold one per 2–10), so
		// that a header claiming 50 MP over a few KB costs no 200 MB
		// buffer before its data runs out; image/jpeg decides otherwise.
		if libjpegProgressive(b) {
			if int64(len(b))*256 < px {
				return nil, false
			}
			m, err := libjpegDecode(b, 1, image.Rect(0, 0, cfg.Width, cfg.Height), true)
			if err != nil {
				return nil, false
			}
			return Orient(m, orient), true
		}
		img, err := newLargeJPEG(b, cfg.Width, cfg.Height, orient)
		if err != nil {
			return nil, false
		}
		return img, true
	}
	if lim.MaxDecodeBytes <= 0 || decodedBytes(cfg.Width, cfg.Height, cfg.ColorModel) > lim.MaxDecodeBytes {
		// Refused below, with the usual message: libjpeg-turbo accepts
		// exactly the photos image/jpeg would, with less memory (a 4 KB
		// file claiming 60000×60000 pixels cost 1.7 s and 285 MB before
		// its refusal when it was decoded at 1/8 first).
		return nil, false
	}
	k := 2 // never 1: full size at 4 bytes a pixel would cost more than image/jpeg's 1.5–3
	for k < 8 && int64(ceilDiv(cfg.Width, 2*k))*int64(ceilDiv(cfg.Height, 2*k)) >= lim.MaxPixels {
		k *= 2
	}
	w, h := ceilDiv(cfg.Width, k), ceilDiv(cfg.Height, k)
	if 4*int64(w)*int64(h) > lim.MaxDecodeBytes {
		return nil, false // refused below
	}
	if lim.Large != nil {
		lim.Large.Lock()
		defer lim.Large.Unlock()
	}
	m, err := libjpegDecode(b, k, image.Rect(0, 0, w, h), true)
	if err != nil {
		return nil, false
	}
	var img image.Image = m
	if int64(w)*int64(h) > lim.MaxPixels {
		dw, dh := fitPixels(w, h, lim.MaxPixels)
		img = downscale(m, dw, dh)
	}
	info.Downscaled = true
	return Orient(img, orient), true
}

func isOpaque(img image.Image) bool {
	o, ok := img.(interface{ Opaque() bool })
	return ok && o.Opaque()
}

// ToRGBA returns img as an *image.RGBA with bounds starting at (0, 0):
// img itself if it already is one with such bounds, otherwise a copy. For
// a large JPEG decoded in pieces ([Reducer]) it is the whole image, decoded
// once and kept by img: do not modify it.
func ToRGBA(img image.Image) *image.RGBA {
	if v, ok := img.(*largeJPEG); ok {
		img = v.fullImage().SubImage(v.rect)
	}
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Rect, img, b.Min, draw.Src)
	return m
}
