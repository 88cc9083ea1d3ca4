package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// ftypBox returns an ISO-BMFF file start: an ftyp box with the major brand
// and compatible brands, then a few bytes of another box.
func ftypBox(major string, compat ...string) []byte {
	b := []byte{0, 0, 0, byte(16 + 4*len(compat))}
	b = append(b, "ftyp"+major+"\x00\x00\x00\x00"...)
	for _, c := range compat {
		b = append(b, c...)
	}
	return append(b, "\x00\x00\x00\x08meta"...)
}

// TestSniffClasses: every class of input gets its own error, usable with
// errors.Is, and a message that names the format.
func TestSniffClasses(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrEmpty, "empty file"},
		{"iPhone HEIC", ftypBox("heic", "mif1", "heic"), ErrUnsupportedFormat, "format not supported: HEIC"},
		{"HEIF mif1", ftypBox("mif1", "mif1", "heic"), ErrUnsupportedFormat, "format not supported: HEIC"},
		{"AVIF", ftypBox("avif", "avif", "mif1", "miaf"), ErrUnsupportedFormat, "format not supported: AVIF"},
		{"AVIF under mif1", ftypBox("mif1", "mif1", "avif"), ErrUnsupportedFormat, "format not supported: AVIF"},
		{"TIFF", []byte("II*\x00\x08\x00\x00\x00"), ErrUnsupportedFormat, "TIFF"},
		{"JPEG XL", []byte("\xFF\x0A\xfa\x7f"), ErrUnsupportedFormat, "JPEG XL"},
		{"MP4 video", ftypBox("isom", "isom", "mp42"), ErrNotImage, "MP4"},
		{"text", []byte("hello, world\n"), ErrNotImage, "not a JPEG, PNG, GIF, BMP or WebP file"},
		{"one byte", []byte{0xFF}, ErrNotImage, "not an image"},
	}
	for _, c := range cases {
		_, err := Sniff(c.data)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want errors.Is %v and %q in the message", c.name, err, c.want, c.msg)
		}
		// Decode says the same thing.
		if _, _, err := Decode(bytes.NewReader(c.data), Limits{}); !errors.Is(err, c.want) {
			t.Errorf("%s: Decode: %v, want %v", c.name, err, c.want)
		}
	}
	for _, f := range []string{"jpeg", "png", "gif", "bmp", "webp"} {
		var b []byte
		switch f {
		case "jpeg":
			b = encodeJPEG(t, quadrants(4, 4))
		case "png":
			b = pngOf(t, quadrants(4, 4))
		case "gif":
			b = []byte("GIF89a")
		case "bmp":
			b = []byte("BM")
		case "webp":
			b = []byte("RIFF\x00\x00\x00\x00WEBPVP8 ")
		}
		if got, err := Sniff(b); got != f || err != nil {
			t.Errorf("%s: Sniff = %q, %v", f, got, err)
		}
	}
	// A corrupt file of a supported format wraps ErrCorrupt.
	if _, _, err := Decode(strings.NewReader("\xFF\xD8\xFF\xE0 truncated"), Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt JPEG: %v, want ErrCorrupt", err)
	}
}

func pngOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cutout returns a w×h NRGBA image: an opaque coloured disc on a fully
// transparent background whose hidden colour is black, with a ring of
// half-transparent pixels at the disc's edge.
func cutout(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			d := math.Hypot(float64(x-w/2), float64(y-h/2)) / float64(min(w, h)/3)
			c := color.NRGBA{uint8(40 + x), uint8(90 + y), 200, 255}
			switch {
			case d > 1.1:
				c = color.NRGBA{0, 0, 0, 0}
			case d > 1:
				c.A = 128
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

// flatOnWhite composites by the textbook formula, independently of Flatten.
func flatOnWhite(src *image.NRGBA) *image.RGBA {
	b := src.Bounds()
	m := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := src.NRGBAAt(x, y)
			a := float64(c.A) / 255
			f := func(v uint8) uint8 { return uint8(math.Round(float64(v)*a + 255*(1-a))) }
			m.SetRGBA(x, y, color.RGBA{f(c.R), f(c.G), f(c.B), 255})
		}
	}
	return m
}

func maxDiff(t *testing.T, a, b image.Image) int {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes %v and %v", a.Bounds(), b.Bounds())
	}
	d := 0
	for y := 0; y < a.Bounds().Dy(); y++ {
		for x := 0; x < a.Bounds().Dx(); x++ {
			r1, g1, b1, a1 := a.At(a.Bounds().Min.X+x, a.Bounds().Min.Y+y).RGBA()
			r2, g2, b2, a2 := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			for _, p := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}, {a1, a2}} {
				d = max(d, int(math.Abs(float64(p[0]>>8)-float64(p[1]>>8))))
			}
		}
	}
	return d
}

// TestTransparencyOnWhite: a PNG cut-out decodes to the same pixels as its
// copy flattened onto white (exactly where alpha is 0 or 255, within
// rounding elsewhere), for every pixel type the decoders produce.
func TestTransparencyOnWhite(t *testing.T) {
	src := cutout(40, 30)
	want := flatOnWhite(src)
	img, info, err := DecodeInfo(bytes.NewReader(pngOf(t, src)), Limits{})
	if err != nil || !info.Flattened {
		t.Fatalf("decode: %v, flattened %v", err, info.Flattened)
	}
	if d := maxDiff(t, img, want); d > 1 {
		t.Errorf("PNG cut-out differs from its white-flattened copy by %d levels", d)
	}
	if c := color.RGBAModel.Convert(img.At(0, 0)).(color.RGBA); c != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("transparent corner decoded as %v, want white", c)
	}
	// An opaque image is not touched.
	if _, info, _ := DecodeInfo(bytes.NewReader(pngOf(t, want)), Limits{}); info.Flattened {
		t.Error("an opaque PNG was reported flattened")
	}

	// Every in-place type, the palette and the generic fallback.
	rgba := image.NewRGBA(src.Rect)
	xdraw.Draw(rgba, rgba.Rect, src, image.Point{}, xdraw.Src) // premultiplied
	n64 := image.NewNRGBA64(src.Rect)
	xdraw.Draw(n64, n64.Rect, src, image.Point{}, xdraw.Src)
	r64 := image.NewRGBA64(src.Rect)
	xdraw.Draw(r64, r64.Rect, src, image.Point{}, xdraw.Src)
	pal := image.NewPaletted(src.Rect, color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 0, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	palWant := image.NewNRGBA(src.Rect)
	xdraw.Draw(palWant, palWant.Rect, pal, image.Point{}, xdraw.Src)
	shared := append(color.Palette(nil), pal.Palette...)
	nycc := image.NewNYCbCrA(src.Rect, image.YCbCrSubsampleRatio444)
	for i := range nycc.A {
		nycc.A[i] = uint8(i % 2 * 255)
		nycc.Y[i] = 100
		nycc.Cb[i], nycc.Cr[i] = 128, 128
	}
	nyccWant := image.NewNRGBA(src.Rect)
	for i := range nycc.A {
		nyccWant.Pix[4*i], nyccWant.Pix[4*i+1], nyccWant.Pix[4*i+2], nyccWant.Pix[4*i+3] = 100, 100, 100, nycc.A[i]
	}
	for _, c := range []struct {
		name string
		img  image.Image
		want *image.RGBA
	}{
		{"NRGBA", image.Image(cutout(40, 30)), want},
		{"RGBA", rgba, want},
		{"NRGBA64", n64, want},
		{"RGBA64", r64, want},
		{"Paletted", pal, flatOnWhite(palWant)},
		{"NYCbCrA", nycc, flatOnWhite(nyccWant)},
	} {
		got, flat := Flatten(c.img)
		if !flat {
			t.Errorf("%s: not flattened", c.name)
		}
		if d := maxDiff(t, got, c.want); d > 1 {
			t.Errorf("%s: differs from the white-flattened copy by %d levels", c.name, d)
		}
	}
	if pal.Palette[0] == shared[0] {
		t.Error("Paletted: palette not flattened")
	}
	// A GIF with a transparent colour.
	var g bytes.Buffer
	gp := image.NewPaletted(image.Rect(0, 0, 20, 20), color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{200, 10, 10, 255}})
	for i := range gp.Pix {
		gp.Pix[i] = uint8(i / 200) // top half transparent, bottom half red
	}
	if err := gif.Encode(&g, gp, nil); err != nil {
		t.Fatal(err)
	}
	img, info, err = DecodeInfo(&g, Limits{})
	if err != nil || !info.Flattened || colourName(img.At(0, 0)) != "white" || colourName(img.At(0, 19)) != "red" {
		t.Errorf("GIF: %v, flattened %v, corner %v", err, info.Flattened, img.At(0, 0))
	}
}

// TestDownscale: the area average keeps a flat colour exactly, averages a
// fine checkerboard to grey, agrees with x/image/draw's BiLinear on a
// smooth image, and fits the pixel limit.
func TestDownscale(t *testing.T) {
	flat := image.NewYCbCr(image.Rect(0, 0, 101, 77), image.YCbCrSubsampleRatio420)
	for i := range flat.Y {
		flat.Y[i] = 150
	}
	for i := range flat.Cb {
		flat.Cb[i], flat.Cr[i] = 90, 170
	}
	want := color.RGBAModel.Convert(flat.At(0, 0)).(color.RGBA)
	for _, size := range [][2]int{{50, 38}, {33, 25}, {100, 76}, {1, 1}, {101, 77}} {
		m := downscale(flat, size[0], size[1])
		if m.Rect.Dx() != size[0] || m.Rect.Dy() != size[1] {
			t.Fatalf("size %v, want %v", m.Rect.Size(), size)
		}
		for y := range size[1] {
			for x := range size[0] {
				if c := m.RGBAAt(x, y); c != want {
					t.Fatalf("%v: flat colour %v became %v at %d,%d", size, want, c, x, y)
				}
			}
		}
	}
	checker := image.NewGray(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			checker.SetGray(x, y, color.Gray{uint8(255 * ((x + y) % 2))})
		}
	}
	m := downscale(checker, 16, 12)
	for i := 0; i < len(m.Pix); i += 4 {
		if v := m.Pix[i]; v < 126 || v > 129 {
			t.Fatalf("checkerboard averaged to %d, want 127/128", v)
		}
	}
	smooth := image.NewRGBA(image.Rect(0, 0, 90, 60))
	for y := range 60 {
		for x := range 90 {
			smooth.SetRGBA(x, y, color.RGBA{uint8(2 * x), uint8(3 * y), uint8(x + y), 255})
		}
	}
	ref := image.NewRGBA(image.Rect(0, 0, 45, 30))
	xdraw.BiLinear.Scale(ref, ref.Rect, smooth, smooth.Rect, xdraw.Src, nil)
	if d := maxDiff(t, downscale(smooth, 45, 30), ref); d > 3 {
		t.Errorf("differs from x/image/draw BiLinear by %d levels on a smooth ramp", d)
	}
	for _, c := range [][3]int64{{8000, 6000, 1_000_000}, {7, 5000, 1000}, {5000, 3, 1000}, {3, 3, 1}} {
		w, h := fitPixels(int(c[0]), int(c[1]), c[2])
		if int64(w)*int64(h) > c[2] || w < 1 || h < 1 {
			t.Errorf("fitPixels(%v) = %dx%d", c, w, h)
		}
	}
	if w, h := fitPixels(8000, 6000, 1_000_000); w < 1150 || h < 860 {
		t.Errorf("fitPixels shrank 8000x6000 to %dx%d, more than needed for 1 Mpx", w, h)
	}
}

// TestOverPixelLimit: with MaxDecodeBytes a photo over the pixel limit is
// downscaled to fit (oriented, and Info keeps the displayed full size);
// over the memory bound it is refused; without it, refused as before.
func TestOverPixelLimit(t *testing.T) {
	j := withExif(encodeJPEG(t, quadrants(200, 100)), 6, binary.LittleEndian) // displayed 100×200
	lim := Limits{MaxPixels: 5000, MaxDecodeBytes: 200 * 100 * 3, Large: &sync.Mutex{}}
	img, info, err := DecodeInfo(bytes.NewReader(j), lim)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if !info.Downscaled || info.Width != 100 || info.Height != 200 || int64(b.Dx()*b.Dy()) > 5000 || b.Dx() != 50 || b.Dy() != 100 {
		t.Fatalf("got %v, info %+v; want 50x100 of a 100x200 photo", b, info)
	}
	// Orientation 6 puts the stored top-left (red) at the top right.
	if c := colourName(img.At(b.Max.X-3, 2)); c != "red" {
		t.Errorf("top right is %s, want red", c)
	}
	lim.MaxDecodeBytes = 200*100*3 - 1
	if _, _, err := DecodeInfo(bytes.NewReader(j), lim); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("over the decode bound: %v, want ErrTooLarge", err)
	}
	if _, _, err := DecodeInfo(bytes.NewReader(j), Limits{MaxPixels: 5000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("no decode bound: %v, want ErrTooLarge", err)
	}
	// A transparent PNG over the limit is flattened while downscaled.
	img, info, err = DecodeInfo(bytes.NewReader(pngOf(t, cutout(80, 60))), Limits{MaxPixels: 1200, MaxDecodeBytes: 1 << 20})
	if err != nil || !info.Downscaled || !info.Flattened || colourName(img.At(0, 0)) != "white" {
		t.Errorf("transparent PNG: %v, %+v, corner %v", err, info, img.At(0, 0))
	}
}

// TestDecodeFileClasses: an empty file, a HEIC file named .jpg, a PNG
// without extension, a file over the byte limit and a folder: each is
// told by its content and named with its reason.
func TestDecodeFileClasses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jpg")
	os.WriteFile(empty, nil, 0o644)
	if _, _, err := DecodeFile(empty, Limits{}); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "empty.jpg: empty file") {
		t.Errorf("empty: %v", err)
	}
	heic := filepath.Join(dir, "IMG_0001.jpg") // extension lies; content decides
	os.WriteFile(heic, ftypBox("heic", "mif1", "heic"), 0o644)
	if _, _, err := DecodeFile(heic, Limits{}); !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "HEIC") {
		t.Errorf("HEIC named .jpg: %v", err)
	}
	png := filepath.Join(dir, "photo.data")
	os.WriteFile(png, pngOf(t, quadrants(8, 8)), 0o644)
	if _, f, err := DecodeFile(png, Limits{}); err != nil || f != "png" {
		t.Errorf("PNG without extension: %q, %v", f, err)
	}
	if _, _, err := DecodeFile(png, Limits{MaxBytes: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the byte limit: %v", err)
	}
	if _, _, err := DecodeFile(dir, Limits{}); !errors.Is(err, ErrNotImage) {
		t.Errorf("a folder: %v", err)
	}
}
