package imageio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"
)

// quadrants returns a w×h image whose quadrants are red (top left), green
// (top right), blue (bottom left) and white (bottom right).
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{255, 0, 0, 255}
			switch {
			case x >= w/2 && y < h/2:
				c = color.RGBA{0, 255, 0, 255}
			case x < w/2 && y >= h/2:
				c = color.RGBA{0, 0, 255, 255}
			case x >= w/2 && y >= h/2:
				c = color.RGBA{255, 255, 255, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// name of the dominant colour of c, tolerant of JPEG loss.
func colourName(c color.Color) string {
	r, g, b, _ := c.RGBA()
	hi := func(v uint32) bool { return v > 0x8000 }
	switch {
	case hi(r) && hi(g) && hi(b):
		return "white"
	case hi(r):
		return "red"
	case hi(g):
		return "green"
	case hi(b):
		return "blue"
	}
	return "?"
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withExif splices an APP1 Exif segment holding orientation o right after
// the SOI marker of the JPEG j, in the given byte order.
func withExif(j []byte, o uint16, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+2*12+4)
	if bo == binary.LittleEndian {
		copy(tiff, "II*\x00")
	} else {
		copy(tiff, "MM\x00*")
	}
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 2) // two entries: an unrelated tag, then orientation
	e := tiff[10:]
	bo.PutUint16(e[0:], 0x010F) // Make, ASCII, 0 bytes
	bo.PutUint16(e[2:], 2)
	e = tiff[22:]
	bo.PutUint16(e[0:], 0x0112)
	bo.PutUint16(e[2:], 3) // SHORT
	bo.PutUint32(e[4:], 1)
	bo.PutUint16(e[8:], o)
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

func TestOrientationAll8(t *testing.T) {
	const w, h = 64, 32
	j := encodeJPEG(t, quadrants(w, h))
	// Where the stored top-left (red) and top-right (green) corners must
	// appear, from the EXIF definition of each orientation ("the 0th row is
	// the visual …, the 0th column is the visual …").
	want := map[uint16][2]string{
		1: {"TL", "TR"}, 2: {"TR", "TL"}, 3: {"BR", "BL"}, 4: {"BL", "BR"},
		5: {"TL", "BL"}, 6: {"TR", "BR"}, 7: {"BR", "TR"}, 8: {"BL", "TL"},
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := uint16(1); o <= 8; o++ {
			b := withExif(j, o, bo)
			if got := JPEGOrientation(b); got != int(o) {
				t.Fatalf("%v orientation %d: read %d", bo, o, got)
			}
			img, format, err := Decode(bytes.NewReader(b), DefaultLimits)
			if err != nil || format != "jpeg" {
				t.Fatalf("orientation %d: %v %q", o, err, format)
			}
			r := img.Bounds()
			ww, wh := w, h
			if o >= 5 {
				ww, wh = h, w
			}
			if r.Dx() != ww || r.Dy() != wh {
				t.Errorf("orientation %d: size %v, want %dx%d", o, r.Size(), ww, wh)
			}
			corner := map[string]string{
				"TL": colourName(img.At(r.Min.X+3, r.Min.Y+3)),
				"TR": colourName(img.At(r.Max.X-4, r.Min.Y+3)),
				"BL": colourName(img.At(r.Min.X+3, r.Max.Y-4)),
				"BR": colourName(img.At(r.Max.X-4, r.Max.Y-4)),
			}
			if corner[want[o][0]] != "red" || corner[want[o][1]] != "green" {
				t.Errorf("%v orientation %d: corners %v, want red at %s and green at %s", bo, o, corner, want[o][0], want[o][1])
			}
		}
	}
}

func TestJPEGOrientationMalformed(t *testing.T) {
	j := encodeJPEG(t, quadrants(16, 16))
	full := withExif(j, 6, binary.BigEndian)
	// Every truncation and a few corruptions must give a valid answer, never panic.
	for n := 0; n < 80 && n < len(full); n++ {
		if o := JPEGOrientation(full[:n]); o < 1 || o > 8 {
			t.Fatalf("truncated at %d: %d", n, o)
		}
	}
	bad := append([]byte{}, full...)
	bad[2+4+6+4] = 0xFF // IFD offset far out of range
	if o := JPEGOrientation(bad); o != 1 {
		t.Errorf("bad IFD offset gave %d", o)
	}
	if o := JPEGOrientation(withExif(j, 9, binary.LittleEndian)); o != 1 {
		t.Errorf("orientation 9 gave %d", o)
	}
	if o := JPEGOrientation(j); o != 1 {
		t.Errorf("no Exif gave %d", o)
	}
}

// Tiny WebP files: a 1x1 lossless (VP8L) and a 1x1 lossy (VP8) image.
const (
	webpLossless = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="
	webpLossy    = "UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA"
)

func TestFormats(t *testing.T) {
	src := quadrants(8, 6)
	enc := map[string]func() []byte{
		"jpeg": func() []byte { return encodeJPEG(t, src) },
		"png": func() []byte {
			var b bytes.Buffer
			png.Encode(&b, src)
			return b.Bytes()
		},
		"gif": func() []byte {
			var b bytes.Buffer
			gif.Encode(&b, src, nil)
			return b.Bytes()
		},
		"bmp": func() []byte {
			var b bytes.Buffer
			bmp.Encode(&b, src)
			return b.Bytes()
		},
	}
	for name, f := range enc {
		b := f()
		img, format, err := Decode(bytes.NewReader(b), Limits{})
		if err != nil || format != name {
			t.Errorf("%s: %v, format %q", name, err, format)
			continue
		}
		if img.Bounds().Dx() != 8 || img.Bounds().Dy() != 6 {
			t.Errorf("%s: bounds %v", name, img.Bounds())
		}
		if name != "jpeg" && colourName(img.At(7, 0)) != "green" {
			t.Errorf("%s: pixel (7,0) = %v", name, img.At(7, 0))
		}
		// Truncated files must fail, not panic, and JPEG and PNG say so.
		_, _, err = Decode(bytes.NewReader(b[:len(b)/2]), Limits{})
		if err == nil {
			t.Errorf("%s: truncated file decoded", name)
		} else if (name == "jpeg" || name == "png") && !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s: truncated file: %v; want it to say the file looks truncated", name, err)
		}
	}
	for _, s := range []string{webpLossless, webpLossy} {
		b, _ := base64.StdEncoding.DecodeString(s)
		img, format, err := Decode(bytes.NewReader(b), Limits{})
		if err != nil || format != "webp" || img.Bounds().Dx() != 1 {
			t.Errorf("webp: %v, %q", err, format)
		}
		if _, _, err := Decode(bytes.NewReader(b[:len(b)-6]), Limits{}); err == nil {
			t.Error("truncated webp decoded")
		}
	}
	if _, _, err := Decode(strings.NewReader("RIFF\x10\x00\x00\x00WEBPVP8 garbage!"), Limits{}); err == nil {
		t.Error("corrupt webp decoded")
	}
	if _, _, err := Decode(strings.NewReader("hello, world"), Limits{}); err == nil || !strings.Contains(err.Error(), "not a JPEG") {
		t.Errorf("text file: %v", err)
	}
	// A valid JPEG with a feature image/jpeg lacks (arithmetic coding) is
	// unsupported, not corrupt.
	arith, err := os.ReadFile(filepath.Join("testdata", "arithmetic.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decode(bytes.NewReader(arith), Limits{}); !errors.Is(err, ErrUnsupportedFormat) || errors.Is(err, ErrCorrupt) {
		t.Errorf("arithmetic-coded JPEG: %v, want ErrUnsupportedFormat", err)
	}
}

func TestBomb(t *testing.T) {
	// A PNG header declaring 100000x100000 pixels, with no pixel data.
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	p := b.Bytes()
	binary.BigEndian.PutUint32(p[16:], 100000) // IHDR width
	binary.BigEndian.PutUint32(p[20:], 100000) // IHDR height
	// Fix the IHDR CRC so that the decoder accepts the header.
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	start := time.Now()
	_, _, err := Decode(bytes.NewReader(p), DefaultLimits)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "100000x100000") {
		t.Fatalf("bomb: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("bomb rejected after %v", d)
	}
	// Byte limit.
	if _, _, err := Decode(bytes.NewReader(make([]byte, 2000)), Limits{MaxBytes: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("byte limit: %v", err)
	}
}

func TestDecodeFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jpg")
	os.WriteFile(good, encodeJPEG(t, quadrants(10, 10)), 0o644)
	if _, f, err := DecodeFile(good, DefaultLimits); err != nil || f != "jpeg" {
		t.Errorf("good: %v", err)
	}
	bad := filepath.Join(dir, "bad.jpg")
	j := encodeJPEG(t, quadrants(10, 10))
	os.WriteFile(bad, j[:len(j)/3], 0o644)
	if _, _, err := DecodeFile(bad, DefaultLimits); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad: %v", err)
	}
	if _, _, err := DecodeFile(filepath.Join(dir, "missing.png"), DefaultLimits); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing: %v", err)
	}
}

func TestToRGBA(t *testing.T) {
	g := image.NewGray(image.Rect(2, 3, 5, 7))
	g.SetGray(2, 3, color.Gray{200})
	m := ToRGBA(g)
	if m.Rect != image.Rect(0, 0, 3, 4) || m.RGBAAt(0, 0) != (color.RGBA{200, 200, 200, 255}) {
		t.Errorf("ToRGBA: %v %v", m.Rect, m.RGBAAt(0, 0))
	}
	if ToRGBA(m) != m {
		t.Error("ToRGBA copied an *image.RGBA")
	}
}
