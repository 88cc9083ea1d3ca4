package imageio

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// SniffLen is how many leading bytes of a file [Sniff] looks at.
const SniffLen = 64

// Sniff tells an image's format from its first bytes (its "magic
// number"), never from a file name. head should hold the first [SniffLen]
// bytes of the file, or all of it if shorter.
//
// It returns "jpeg", "png", "gif", "bmp" or "webp" for the formats this
// package decodes. Otherwise the error wraps:
//   - [ErrEmpty] for zero bytes;
//   - [ErrUnsupportedFormat] for images in a format it recognises but cannot
//     decode, named in the message: HEIC/HEIF and AVIF (ISO-BMFF "ftyp" box
//     with an image brand), TIFF (also most camera raw files), JPEG XL,
//     JPEG 2000 and Photoshop; convert those to JPEG or PNG first;
//   - [ErrNotImage] for anything else (text, videos, sidecar files, ...).
//
// Sniff only reads the signature: a file that passes may still fail to
// decode (then [Decode] wraps [ErrCorrupt]).
func Sniff(head []byte) (string, error) {
	h := head
	has := func(off int, sig string) bool {
		return len(h) >= off+len(sig) && string(h[off:off+len(sig)]) == sig
	}
	switch {
	case len(h) == 0:
		return "", ErrEmpty
	case has(0, "\xFF\xD8\xFF"):
		return "jpeg", nil
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "png", nil
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "gif", nil
	case has(0, "BM"):
		return "bmp", nil
	case has(0, "RIFF") && has(8, "WEBP"):
		return "webp", nil
	case has(4, "ftyp"):
		return "", ftyp(h)
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "", unsupported("TIFF or camera raw")
	case has(0, "\xFF\x0A"), has(0, "\x00\x00\x00\x0CJXL \r\n\x87\n"):
		return "", unsupported("JPEG XL")
	case has(0, "\x00\x00\x00\x0CjP  \r\n\x87\n"), has(0, "\xFF\x4F\xFF\x51"):
		return "", unsupported("JPEG 2000")
	case has(0, "8BPS"):
		return "", unsupported("Photoshop (PSD)")
	}
	return "", fmt.Errorf("%w: not a JPEG, PNG, GIF, BMP or WebP file", ErrNotImage)
}

func unsupported(name string) error {
	return fmt.Errorf("%w: %s (convert it to JPEG or PNG first)", ErrUnsupportedFormat, name)
}

// ftyp classifies an ISO base media file (HEIF, AVIF, MP4, QuickTime, ...)
// by the major brand and the compatible brands of its leading ftyp box:
// box size (4 bytes, big endian), "ftyp", major brand (4), minor version
// (4), then compatible brands (4 each) up to the box size.
func ftyp(h []byte) error {
	if len(h) < 12 {
		return fmt.Errorf("%w: truncated ISO media header", ErrNotImage)
	}
	end := min(int(binary.BigEndian.Uint32(h)), len(h))
	brands := [][]byte{h[8:12]}
	for i := 16; i+4 <= end; i += 4 {
		brands = append(brands, h[i:i+4])
	}
	is := func(names ...string) bool {
		for _, b := range brands {
			for _, n := range names {
				if bytes.Equal(b, []byte(n)) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case is("avif", "avis"):
		return unsupported("AVIF")
	case is("heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1"):
		return unsupported("HEIC")
	case is("crx "):
		return unsupported("Canon CR3 raw")
	}
	return fmt.Errorf("%w: an MP4/QuickTime video or other ISO media file (brand %q)", ErrNotImage, h[8:12])
}
