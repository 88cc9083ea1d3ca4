package face

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// speedFrame returns the one-face frame of bench/detect (testdata/face.jpg
// scaled to 40 % of the height of a w×h textured frame) as JPEG bytes,
// quality 90.
func speedFrame(b testing.TB, w, h int) []byte {
	src := loadImage(b, "../testdata/face.jpg")
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(100 + (x*7+y*13)%40)
			img.SetRGBA(x, y, color.RGBA{v, v + 10, v + 20, 255})
		}
	}
	sb := src.Bounds()
	fh := 4 * h / 10
	fw := fh * sb.Dx() / sb.Dy()
	xdraw.CatmullRom.Scale(img, image.Rect(w/3, h/4, w/3+fw, h/4+fh), src, sb, xdraw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkBlazeFaceStages times each stage of BlazeFace.Detect on the
// frames of bench/detect (one face; 448×448, 1 MP, 12 MP), on
// $GOMLX_BACKEND: the JPEG decode, the 256-pixel copy, each network run
// with its input sampling and output decoding (back and front model on the
// whole photo, front model on the face), the refining pass's plane, and
// the whole Detect (decode excluded). See BENCHMARKS.md §7.
func BenchmarkBlazeFaceStages(b *testing.B) {
	d := newTestBlazeFace(b)
	for _, s := range []struct {
		name string
		w, h int
	}{{"448", 448, 448}, {"1MP", 1152, 864}, {"12MP", 4000, 3000}} {
		data := speedFrame(b, s.w, s.h)
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		faces, err := d.Detect(img, BlazeOptions{})
		if err != nil || len(faces) != 1 {
			b.Fatalf("%s: %d faces, %v; want 1", s.name, len(faces), err)
		}
		bnd := img.Bounds()
		coarse := downscale(img, blazeSize)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%s/%s", s.name, name), func(b *testing.B) {
				for b.Loop() {
					f()
				}
			})
		}
		run("decode", func() { _, _ = jpeg.Decode(bytes.NewReader(data)) })
		run("downscale", func() { downscale(img, blazeSize) })
		run("back", func() {
			_, _ = d.runNet(d.back, []job{{net: d.back, pl: coarse, p: wholePass(bnd, 0, d.back.size)}}, DefaultBlazeMinScore)
		})
		run("front", func() {
			_, _ = d.runNet(d.front, []job{{net: d.front, pl: coarse, p: wholePass(bnd, 0, d.front.size)}}, DefaultBlazeMinScore)
		})
		run("refineplane", func() { refinePlane(img, faces[0], d.front.size) })
		run("refine", func() {
			f := faces[0]
			d.refine(&f, refinePlane(img, f, d.front.size), false)
		})
		run("detect", func() { _, _ = d.Detect(img, BlazeOptions{}) })
	}
}
