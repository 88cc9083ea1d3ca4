package augment

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

// gradient is a test image whose pixels all differ: red grows to the
// right, green downwards.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x * 255 / (w - 1)), uint8(y * 255 / (h - 1)), 90, 255})
		}
	}
	return m
}

func TestReproducible(t *testing.T) {
	img := gradient(80, 80)
	a := Default().Apply(img, 64, Seeded(7, 3, 1))
	b := Default().Apply(img, 64, Seeded(7, 3, 1))
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed, image and view gave different bytes")
	}
	if len(a) != 64*64*3 {
		t.Fatalf("got %d bytes, want %d", len(a), 64*64*3)
	}
	differ := 0
	for v := 2; v < 6; v++ {
		if !bytes.Equal(a, Default().Apply(img, 64, Seeded(7, 3, v))) {
			differ++
		}
	}
	if differ != 4 {
		t.Fatalf("only %d of 4 other views differ from view 1", differ)
	}
}

func TestZeroSpecResizes(t *testing.T) {
	img := gradient(64, 64)
	got := Spec{}.Apply(img, 64, Seeded(1, 0, 0))
	for y := range 64 {
		for x := range 64 {
			want := img.RGBAAt(x, y)
			p := got[(y*64+x)*3:]
			if d := int(p[0]) - int(want.R); d < -1 || d > 1 || p[1] != want.G && int(p[1])-int(want.G) > 1 {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, p[:3], want)
			}
		}
	}
}

func TestMirror(t *testing.T) {
	img := gradient(32, 32)
	s := Spec{Mirror: true}
	var plain, mirrored []uint8
	for v := 0; v < 20 && (plain == nil || mirrored == nil); v++ {
		p := s.Apply(img, 32, Seeded(1, 0, v))
		if p[0] < 10 {
			plain = p
		} else {
			mirrored = p
		}
	}
	if plain == nil || mirrored == nil {
		t.Fatal("20 views were all mirrored or all plain")
	}
	for y := range 32 {
		for x := range 32 {
			a, b := plain[(y*32+x)*3:], mirrored[(y*32+31-x)*3:]
			if d := int(a[0]) - int(b[0]); d < -1 || d > 1 {
				t.Fatalf("mirrored pixel (%d,%d) red %d, plain %d", x, y, b[0], a[0])
			}
		}
	}
}

// TestRollKeepsTheCentre turns the view by the largest roll and checks that
// the centre pixel stays the source's centre while a corner changes.
func TestRollKeepsTheCentre(t *testing.T) {
	img := gradient(65, 65)
	plain := Spec{}.Apply(img, 65, Seeded(1, 0, 0))
	turned := Spec{Roll: 30}.Apply(img, 65, Seeded(1, 0, 0))
	c := (32*65 + 32) * 3
	for ch := range 3 {
		if d := int(plain[c+ch]) - int(turned[c+ch]); d < -2 || d > 2 {
			t.Fatalf("centre channel %d moved: %d vs %d", ch, plain[c+ch], turned[c+ch])
		}
	}
	if bytes.Equal(plain[:3*65], turned[:3*65]) {
		t.Fatal("a rolled view's first row equals the plain one")
	}
}

func TestEveryDistortionRuns(t *testing.T) {
	img := gradient(100, 120)
	s := Spec{Gray: 1, Blur: 1, BlurSigma: 2, JPEG: 1, JPEGQuality: 30, Occlude: 1, OccludeSize: 0.5}
	p := s.Apply(img, 48, Seeded(1, 2, 3))
	gray := true
	for i := 0; i < len(p); i += 3 {
		if d := int(p[i]) - int(p[i+1]); d < -12 || d > 12 { // JPEG chroma noise
			gray = false
		}
	}
	if !gray {
		t.Fatal("Gray: 1 gave a coloured view")
	}
}
