//go:build libjpeg && cgo

package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// texture returns a w×h image with structure at every scale (gradients,
// stripes, a bright square), so that misplaced pixels show.
func texture(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x*255)/w ^ (y*255)/h)
			c := color.RGBA{v, uint8(128 + 100*math.Sin(float64(x)/37)), uint8((x / 50 % 2) * 200), 255}
			if x > w/5 && x < w/3 && y > h/4 && y < h/2 {
				c = color.RGBA{250, 250, 250, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// meanDiff is the mean absolute difference per channel (R, G, B) of two
// images of the same size.
func meanDiff(t *testing.T, a, b *image.RGBA) float64 {
	t.Helper()
	if a.Rect.Size() != b.Rect.Size() {
		t.Fatalf("sizes %v and %v", a.Rect, b.Rect)
	}
	var s float64
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			p, q := a.RGBAAt(a.Rect.Min.X+x, a.Rect.Min.Y+y), b.RGBAAt(b.Rect.Min.X+x, b.Rect.Min.Y+y)
			s += math.Abs(float64(p.R)-float64(q.R)) + math.Abs(float64(p.G)-float64(q.G)) + math.Abs(float64(p.B)-float64(q.B))
		}
	}
	return s / float64(3*a.Rect.Dx()*a.Rect.Dy())
}

// TestLargeJPEG: a JPEG over LargeJPEGPixels decodes as a Reducer in every
// EXIF orientation; a region at full scale equals the same pixels of the
// whole image decoded and turned, a reduced region sits where Reduce says
// (each pixel the mean of its square), At and ToRGBA give the same
// pixels, and the whole image agrees with Go's image/jpeg within JPEG
// decoders' differences (chroma upsampling).
func TestLargeJPEG(t *testing.T) {
	const w, h = 1803, 1201 // not multiples of 8 or 16: partial blocks at the edges
	stored := encodeJPEG(t, texture(w, h))
	goImg, err := jpeg.Decode(bytes.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		b := withExif(stored, uint16(o), binary.BigEndian)
		img, info, err := DecodeInfo(bytes.NewReader(b), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rd, ok := img.(Reducer)
		if !ok {
			t.Fatalf("orientation %d: decoded as %T, want a Reducer", o, img)
		}
		dw, dh := w, h
		if o >= 5 {
			dw, dh = h, w
		}
		if img.Bounds() != image.Rect(0, 0, dw, dh) || info.Width != dw || info.Height != dh || info.Downscaled {
			t.Fatalf("orientation %d: bounds %v, info %+v", o, img.Bounds(), info)
		}
		full := ToRGBA(img)
		if d := meanDiff(t, full, ToRGBA(Orient(goImg, o))); d > 2 {
			t.Errorf("orientation %d: differs from image/jpeg by %.2f levels on average", o, d)
		}
		for _, r := range []image.Rectangle{
			image.Rect(0, 0, 40, 30), image.Rect(301, 207, 517, 611), image.Rect(dw-77, dh-5, dw, dh), image.Rect(-20, 100, 90, 200),
		} {
			m, s, off := rd.Reduce(r, 1)
			want := full.SubImage(r.Intersect(img.Bounds())).(*image.RGBA)
			if s != 1 || off != want.Rect.Min || m.Rect.Min != (image.Point{}) {
				t.Fatalf("orientation %d, %v at 1/1: s %d, off %v, bounds %v", o, r, s, off, m.Rect)
			}
			if d := maxDiff(t, m, want); d != 0 {
				t.Errorf("orientation %d, %v at 1/1: differs from the whole decode by up to %d levels", o, r, d)
			}
			if c := img.At(want.Rect.Min.X, want.Rect.Min.Y); c != want.RGBAAt(want.Rect.Min.X, want.Rect.Min.Y) {
				t.Errorf("orientation %d: At %v, want %v", o, c, want.RGBAAt(want.Rect.Min.X, want.Rect.Min.Y))
			}
			sub := img.(interface {
				SubImage(image.Rectangle) image.Image
			}).SubImage(r)
			if sub.Bounds() != want.Rect || maxDiff(t, ToRGBA(sub), want) != 0 {
				t.Errorf("orientation %d, %v: SubImage %v differs", o, r, sub.Bounds())
			}
			for _, k := range []int{2, 4, 8} {
				// The largest power of two ≤ maxScale, from a fresh
				// decode (this one's regions would serve it finer).
				fresh, _, err := DecodeInfo(bytes.NewReader(b), DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				m, s, off := fresh.(Reducer).Reduce(r, k+1)
				if s != k {
					t.Fatalf("maxScale %d gave scale %d", k+1, s)
				}
				// Each reduced pixel against the mean of its square of the
				// full-size image (DCT scaling is close to, not exactly, a
				// box filter; TestLargeJPEGOffset checks positions exactly).
				if d := squareDiff(full, m, off, k); d > 10 {
					t.Errorf("orientation %d, %v at 1/%d (off %v): %.2f levels from the squares' means", o, r, k, off, d)
				}
				// The region covers r.
				cover := image.Rect(off.X, off.Y, off.X+k*m.Rect.Dx(), off.Y+k*m.Rect.Dy())
				if !r.Intersect(img.Bounds()).In(cover) {
					t.Errorf("orientation %d, %v at 1/%d: covers only %v", o, r, k, cover)
				}
			}
		}
	}
}

// squareDiff is the mean absolute difference between reduced pixels m(p)
// and the means of full's squares of side k at off + k·p, over the
// squares wholly inside full; −1 when there are fewer than 4.
func squareDiff(full, m *image.RGBA, off image.Point, k int) float64 {
	var s float64
	n := 0
	for y := range m.Rect.Dy() {
		for x := range m.Rect.Dx() {
			sq := image.Rect(off.X+k*x, off.Y+k*y, off.X+k*x+k, off.Y+k*y+k)
			if !sq.In(full.Rect) {
				continue
			}
			var sum [3]int
			for yy := sq.Min.Y; yy < sq.Max.Y; yy++ {
				for xx := sq.Min.X; xx < sq.Max.X; xx++ {
					c := full.RGBAAt(xx, yy)
					sum[0], sum[1], sum[2] = sum[0]+int(c.R), sum[1]+int(c.G), sum[2]+int(c.B)
				}
			}
			c := m.RGBAAt(x, y)
			for i, v := range [3]uint8{c.R, c.G, c.B} {
				s += math.Abs(float64(v) - float64(sum[i])/float64(k*k))
			}
			n += 3
		}
	}
	if n < 12 {
		return -1
	}
	return s / float64(n)
}

// TestLargeJPEGOffset: a white square on black, decoded reduced in every
// orientation, has its centroid where Reduce's s and off put it, within a
// fraction of a full-size pixel.
func TestLargeJPEGOffset(t *testing.T) {
	const w, h = 1803, 1201
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	sq := image.Rect(1003, 601, 1027, 625) // not on an 8 or 16 grid
	for y := range h {
		for x := range w {
			c := color.RGBA{0, 0, 0, 255}
			if image.Pt(x, y).In(sq) {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	stored := encodeJPEG(t, img)
	for o := 1; o <= 8; o++ {
		d := mapRect(sq, func(p image.Point) image.Point { return toDisplay(o, w, h, p) })
		want := [2]float64{float64(d.Min.X+d.Max.X) / 2, float64(d.Min.Y+d.Max.Y) / 2}
		for _, k := range []int{1, 2, 4, 8} {
			dec, _, err := Decode(bytes.NewReader(withExif(stored, uint16(o), binary.LittleEndian)), DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			m, s, off := dec.(Reducer).Reduce(d.Inset(-40), k)
			if s != k {
				t.Fatalf("orientation %d: maxScale %d gave scale %d", o, k, s)
			}
			var sx, sy, sw float64
			for y := range m.Rect.Dy() {
				for x := range m.Rect.Dx() {
					v := float64(m.RGBAAt(x, y).G)
					sx, sy, sw = sx+v*(float64(x)+0.5), sy+v*(float64(y)+0.5), sw+v
				}
			}
			got := [2]float64{float64(off.X) + float64(s)*sx/sw, float64(off.Y) + float64(s)*sy/sw}
			if math.Abs(got[0]-want[0]) > 0.5 || math.Abs(got[1]-want[1]) > 0.5 {
				t.Errorf("orientation %d at 1/%d: square's centre at %.2f, want %.1f", o, k, got, want)
			}
		}
	}
}

// TestReduced: Reduced reads a Reducer at the coarsest scale that keeps
// the shorter side at least minSide, and returns other images as they are.
func TestReduced(t *testing.T) {
	img, _, err := Decode(bytes.NewReader(encodeJPEG(t, texture(1803, 1201))), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ min, w, h int }{{224, 451, 301}, {100, 226, 151}, {600, 902, 601}, {700, 1803, 1201}} {
		if b := Reduced(img, c.min).Bounds(); b != image.Rect(0, 0, c.w, c.h) {
			t.Errorf("Reduced(%d): %v, want %dx%d", c.min, b, c.w, c.h)
		}
	}
	plain := image.NewRGBA(image.Rect(0, 0, 10, 10))
	if Reduced(plain, 2) != image.Image(plain) {
		t.Error("Reduced copied an image that is no Reducer")
	}
}

// TestLargeJPEGReuse: a region asked for at 1/4 or 1/8 after a larger one
// at a finer scale comes from that decode (the coarsest holding it); one
// held by none is decoded at the scale asked for.
func TestLargeJPEGReuse(t *testing.T) {
	img, _, err := Decode(bytes.NewReader(encodeJPEG(t, texture(1600, 1400))), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	rd := img.(Reducer)
	if _, s, _ := rd.Reduce(image.Rect(400, 400, 1000, 1000), 2); s != 2 {
		t.Fatalf("scale %d, want 2", s)
	}
	if m, s, off := rd.Reduce(image.Rect(500, 500, 900, 900), 4); s != 2 || off != image.Pt(500, 500) || m.Rect.Dx() != 200 {
		t.Errorf("inside the 1/2 region: scale %d, off %v, %v; want 2, (500,500), 200 wide", s, off, m.Rect)
	}
	if _, s, _ := rd.Reduce(image.Rect(0, 0, 900, 900), 4); s != 4 {
		t.Errorf("beyond the 1/2 region: scale %d, want 4", s)
	}
	// The coarsest region that holds it serves (the whole photo's 1/8
	// copy made when decoding would serve a request at 1/8).
	if _, s, _ := rd.Reduce(image.Rect(920, 920, 990, 990), 5); s != 2 {
		t.Errorf("outside the 1/4 region, inside the 1/2 one: scale %d, want 2", s)
	}
	if _, s, _ := rd.Reduce(image.Rect(100, 100, 300, 300), 5); s != 4 {
		t.Errorf("inside the 1/4 region: scale %d, want 4", s)
	}
}

// TestLargeJPEGProgressive: a progressive JPEG over LargeJPEGPixels is
// decoded whole in one pass (each part would cost a pass over all of its
// scans), with the pixels of image/jpeg's decode within decoders'
// differences.
func TestLargeJPEGProgressive(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if !libjpegProgressive(b) {
		t.Fatal("testdata/progressive.jpg not recognised as progressive")
	}
	img, _, err := Decode(bytes.NewReader(b), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("decoded as %T, want a whole *image.RGBA", img)
	}
	want, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := meanDiff(t, m, ToRGBA(want)); d > 2 {
		t.Errorf("differs from image/jpeg by %.2f levels on average", d)
	}
	if libjpegProgressive(encodeJPEG(t, texture(64, 64))) {
		t.Error("a sequential JPEG taken for progressive")
	}
}

// TestLargeJPEGDamaged: a truncated or damaged large JPEG is still
// reported as corrupt (image/jpeg decides when libjpeg-turbo warns), and
// a large photo over the pixel limit is downscaled through DCT scaling
// without its full-size pixels.
func TestLargeJPEGDamaged(t *testing.T) {
	const w, h = 1600, 1400
	j := encodeJPEG(t, texture(w, h))
	if _, _, err := Decode(bytes.NewReader(j[:len(j)*2/3]), DefaultLimits); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: %v, want ErrCorrupt", err)
	}
	bad := append([]byte(nil), j...)
	for i := len(bad) / 2; i < len(bad)/2+64; i++ {
		bad[i] = 0xFF
	}
	if img, _, err := Decode(bytes.NewReader(bad), DefaultLimits); err == nil {
		if _, ok := img.(Reducer); ok {
			t.Errorf("damaged data decoded piece by piece, not by image/jpeg")
		}
	}
	img, info, err := DecodeInfo(bytes.NewReader(withExif(j, 6, binary.LittleEndian)),
		Limits{MaxPixels: 300_000, MaxDecodeBytes: 3 * w * h})
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if !info.Downscaled || info.Width != h || info.Height != w || int64(b.Dx()*b.Dy()) > 300_000 || b.Dx() < 400 {
		t.Fatalf("over the limit: %v, %+v", b, info)
	}
	// Under 4 times the limit: at 1/2 all the same (not whole at 4 bytes
	// a pixel), so a quarter of the photo's pixels.
	img, info, err = DecodeInfo(bytes.NewReader(j), Limits{MaxPixels: 1_500_000, MaxDecodeBytes: 1 << 30})
	if err != nil || !info.Downscaled || img.Bounds() != image.Rect(0, 0, w/2, h/2) {
		t.Errorf("just over the limit: %v, %+v, %v; want %dx%d", img.Bounds(), info, err, w/2, h/2)
	}
	// The bound is that of image/jpeg's whole decode (3 bytes a pixel):
	// the same photos are refused in every build.
	if _, _, err := DecodeInfo(bytes.NewReader(j), Limits{MaxPixels: 300_000, MaxDecodeBytes: 3*w*h - 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the decode bound: %v, want ErrTooLarge", err)
	}
	// A small file whose header claims 60000×60000 pixels (sequential and
	// progressive): refused from the header, nothing decoded.
	for _, name := range []string{"large.jpg", "progressive.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		bomb := withSize(t, b, 60000, 60000)
		start := time.Now()
		if _, _, err := DecodeInfo(bytes.NewReader(bomb), Limits{MaxDecodeBytes: DefaultDecodeBytes}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s claiming 60000x60000: %v, want ErrTooLarge", name, err)
		}
		t.Logf("%s claiming 60000x60000: refused in %v", name, time.Since(start))
		// Within the pixel limit, a progressive header over a few KB is
		// left to image/jpeg, which reports the missing data.
		if _, _, err := DecodeInfo(bytes.NewReader(withSize(t, b[:4000], 7000, 7000)), DefaultLimits); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s cut to 4000 bytes claiming 7000x7000: %v, want ErrCorrupt", name, err)
		}
	}
}

// withSize returns JPEG b with the width and height in its frame header
// (SOF0 or SOF2) replaced.
func withSize(t *testing.T, b []byte, w, h int) []byte {
	t.Helper()
	out := append([]byte(nil), b...)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xFF {
			t.Fatal("no frame header found")
		}
		m, n := out[i+1], int(out[i+2])<<8|int(out[i+3])
		if m == 0xC0 || m == 0xC2 {
			binary.BigEndian.PutUint16(out[i+5:], uint16(h))
			binary.BigEndian.PutUint16(out[i+7:], uint16(w))
			return out
		}
		i += 2 + n
	}
	t.Fatal("no frame header found")
	return nil
}

// TestLargeJPEGMutations: 150 seeded random corruptions of a large JPEG
// (1–4 bytes each, anywhere: header, tables, entropy data) give an error
// or a decodable image, never a crash; the fuzz target below explores
// further.
func TestLargeJPEGMutations(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("testdata", "large.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	reducers := 0
	for range 150 {
		b := append([]byte(nil), seed...)
		for range 1 + rng.Intn(4) {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		img, _, err := Decode(bytes.NewReader(b), Limits{MaxPixels: 2_100_000})
		if err != nil {
			continue
		}
		if rd, ok := img.(Reducer); ok {
			reducers++
			bb := img.Bounds()
			m, s, off := rd.Reduce(image.Rect(bb.Dx()/3, bb.Dy()/2, bb.Dx()/3+200, bb.Dy()/2+100), 2)
			if s != 2 || m.Rect.Dx() < 100 || off.X > bb.Dx()/3 {
				t.Fatalf("Reduce gave %v at 1/%d from %v", m.Rect, s, off)
			}
		}
	}
	if reducers == 0 {
		t.Errorf("no corrupted copy decoded piece by piece: the test no longer reaches libjpeg-turbo's path")
	}
}

// FuzzLargeJPEG: whatever the bytes of a JPEG over LargeJPEGPixels become,
// decoding gives an error or an image whose regions decode at every scale
// with the sizes Reduce promises, without a crash in libjpeg-turbo.
func FuzzLargeJPEG(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "large.jpg"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(withExif(seed, 6, binary.BigEndian))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, _, err := Decode(bytes.NewReader(b), Limits{MaxPixels: 2_100_000})
		if err != nil {
			return
		}
		rd, ok := img.(Reducer)
		if !ok {
			return
		}
		bb := img.Bounds()
		for _, k := range []int{1, 2, 4, 8} {
			r := image.Rect(bb.Dx()/3, bb.Dy()/4, bb.Dx()/3+97, bb.Dy()/4+61)
			m, s, off := rd.Reduce(r, k)
			cover := image.Rect(off.X, off.Y, off.X+s*m.Rect.Dx(), off.Y+s*m.Rect.Dy())
			if s > k && k > 0 || !r.Intersect(bb).In(cover) || len(m.Pix) < 4*m.Rect.Dx()*m.Rect.Dy() {
				t.Fatalf("Reduce(%v, %d) = %v at 1/%d from %v", r, k, m.Rect, s, off)
			}
		}
	})
}
