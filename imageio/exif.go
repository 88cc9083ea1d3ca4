package imageio

import (
	"encoding/binary"
	"image"
	"image/draw"
)

// JPEGOrientation returns the EXIF orientation (1..8) of the JPEG file b,
// or 1 (upright) if there is none or it cannot be read. It walks the JPEG
// marker segments up to the start of scan, finds an APP1 segment that
// starts with "Exif\x00\x00", and reads tag 0x0112 of IFD0 from the TIFF
// structure that follows, in either byte order ("II" little endian or "MM"
// big endian). Every offset is bounds-checked; malformed data gives 1.
func JPEGOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			i += 2 // markers without a length
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan, end of image
			return 1
		}
		n := int(b[i+2])<<8 | int(b[i+3]) // segment length, including itself
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads the orientation tag of IFD0 of a TIFF structure,
// returning 0 if absent or invalid.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := uint64(bo.Uint32(t[4:8]))
	if off+2 > uint64(len(t)) {
		return 0
	}
	count := uint64(bo.Uint16(t[off:]))
	for e := uint64(0); e < count; e++ {
		p := off + 2 + 12*e
		if p+12 > uint64(len(t)) {
			return 0
		}
		if bo.Uint16(t[p:]) != 0x0112 {
			continue
		}
		typ, n := bo.Uint16(t[p+2:]), bo.Uint32(t[p+4:])
		if typ != 3 || n < 1 { // SHORT
			return 0
		}
		if v := int(bo.Uint16(t[p+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}

// Orient returns img transformed so that an image stored with EXIF
// orientation o is displayed upright:
//
//	1 unchanged           5 transpose (flip about the main diagonal)
//	2 mirror horizontally 6 rotate 90° clockwise
//	3 rotate 180°         7 transverse (flip about the anti-diagonal)
//	4 mirror vertically   8 rotate 90° counter-clockwise
//
// For orientations 5..8 width and height swap. For 1 or an invalid value
// img is returned as is; otherwise the result is a new *image.RGBA. The
// source is converted one row at a time (image/draw's fast paths) and each
// row scattered to its place, so a JPEG's YCbCr image becomes one rotated
// RGBA image without an unrotated RGBA copy in between.
func Orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	row := image.NewRGBA(image.Rect(0, 0, w, 1))
	for sy := 0; sy < h; sy++ {
		draw.Draw(row, row.Rect, img, image.Pt(b.Min.X, b.Min.Y+sy), draw.Src)
		for sx := 0; sx < w; sx++ {
			// (x, y) is where stored pixel (sx, sy) is displayed.
			var x, y int
			switch o {
			case 2:
				x, y = w-1-sx, sy
			case 3:
				x, y = w-1-sx, h-1-sy
			case 4:
				x, y = sx, h-1-sy
			case 5:
				x, y = sy, sx
			case 6:
				x, y = h-1-sy, sx
			case 7:
				x, y = h-1-sy, w-1-sx
			case 8:
				x, y = sy, w-1-sx
			}
			copy(dst.Pix[y*dst.Stride+4*x:y*dst.Stride+4*x+4], row.Pix[4*sx:])
		}
	}
	return dst
}
