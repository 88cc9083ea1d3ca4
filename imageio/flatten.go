package imageio

import (
	"image"
	"image/color"
	"image/draw"
)

// Flatten composites an image with transparent pixels onto white, as image
// viewers and browsers show it, and reports whether it had any. The
// networks and the face detector read colour only, so without this a
// cut-out's transparent background would be analysed as whatever colour
// its invisible pixels happen to store (often black).
//
// For each channel c in 0..255 with alpha a, the result is
// c·a/255 + 255·(1 − a/255), rounded; fully opaque images are returned as
// they are. Flatten works in place, with no copy, for *image.NRGBA,
// *image.RGBA, *image.NRGBA64 and *image.RGBA64 (the result keeps its type
// with alpha at its maximum) and for *image.Paletted (the palette is
// flattened, the pixels are untouched); any other type is drawn onto a new
// white *image.RGBA.
func Flatten(img image.Image) (image.Image, bool) {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img, false
	}
	switch m := img.(type) {
	case *image.NRGBA:
		flat := false
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			row := m.Pix[m.PixOffset(m.Rect.Min.X, y):][:4*m.Rect.Dx()]
			for i := 0; i < len(row); i += 4 {
				a := uint32(row[i+3])
				if a == 0xff {
					continue
				}
				flat = true
				for c := 0; c < 3; c++ {
					row[i+c] = uint8((uint32(row[i+c])*a + 0xff*(0xff-a) + 0x7f) / 0xff)
				}
				row[i+3] = 0xff
			}
		}
		return m, flat
	case *image.RGBA: // premultiplied: c already holds c·a
		flat := false
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			row := m.Pix[m.PixOffset(m.Rect.Min.X, y):][:4*m.Rect.Dx()]
			for i := 0; i < len(row); i += 4 {
				a := row[i+3]
				if a == 0xff {
					continue
				}
				flat = true
				for c := 0; c < 3; c++ {
					row[i+c] = min(row[i+c], a) + (0xff - a)
				}
				row[i+3] = 0xff
			}
		}
		return m, flat
	case *image.NRGBA64:
		flat := false
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
				c := m.NRGBA64At(x, y)
				if c.A == 0xffff {
					continue
				}
				flat = true
				a := uint64(c.A)
				f := func(v uint16) uint16 { return uint16((uint64(v)*a + 0xffff*(0xffff-a) + 0x7fff) / 0xffff) }
				m.SetNRGBA64(x, y, color.NRGBA64{f(c.R), f(c.G), f(c.B), 0xffff})
			}
		}
		return m, flat
	case *image.RGBA64:
		flat := false
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
				c := m.RGBA64At(x, y)
				if c.A == 0xffff {
					continue
				}
				flat = true
				w := 0xffff - c.A
				m.SetRGBA64(x, y, color.RGBA64{min(c.R, c.A) + w, min(c.G, c.A) + w, min(c.B, c.A) + w, 0xffff})
			}
		}
		return m, flat
	case *image.Paletted:
		flat := false
		p := make(color.Palette, len(m.Palette))
		for i, c := range m.Palette {
			p[i] = c
			if r, g, b, a := c.RGBA(); a != 0xffff {
				flat = true
				w := 0xffff - a
				p[i] = color.RGBA64{uint16(r + w), uint16(g + w), uint16(b + w), 0xffff}
			}
		}
		m.Palette = p
		return m, flat
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst, true
}
