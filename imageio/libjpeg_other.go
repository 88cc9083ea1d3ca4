//go:build !libjpeg || !cgo

package imageio

import (
	"errors"
	"image"
)

// ScaledJPEG tells that this build decodes JPEGs of more than
// LargeJPEGPixels with libjpeg-turbo, scaling while decoding; this one
// (without the libjpeg build tag or cgo) uses Go's image/jpeg only.
const ScaledJPEG = false

// JPEGDecoder names the JPEG decoder of this build for a version line.
var JPEGDecoder = "image/jpeg (Go's; built without the libjpeg tag)"

var (
	errLibjpegWarned = errors.New("libjpeg warned")
	errLibjpegColor  = errors.New("libjpeg: CMYK or YCCK")
)

func libjpegDecode(b []byte, denom int, r image.Rectangle, whole bool) (*image.RGBA, error) {
	return nil, errors.New("imageio: built without libjpeg-turbo (build tag libjpeg)")
}

func libjpegProgressive(b []byte) bool { return false }
