//go:build libjpeg && cgo

package agegender_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
)

// TestLargeJPEGAnalyzed: a 12-megapixel JPEG within the pixel limit is
// decoded in pieces by libjpeg-turbo (an imageio.Reducer), gives the same
// gender and age group as the same file decoded whole by image/jpeg, and
// annotates at its full size.
func TestLargeJPEGAnalyzed(t *testing.T) {
	a := newAnalyzer(t, agegender.Options{})
	small, _, err := imageio.DecodeFile(filepath.Join("testdata", "face.jpg"), imageio.Limits{}) // 320×400
	if err != nil {
		t.Fatal(err)
	}
	buf := bigPhoto(t, small, image.Rect(2100, 1300, 2100+3*320, 1300+3*400))
	res, err := a.AnalyzeReader(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Image.(imageio.Reducer); !ok {
		t.Fatalf("the 12 MP photo decoded as %T, want an imageio.Reducer", res.Image)
	}
	whole, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := a.Analyze(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Faces) != 1 || len(want) != 1 {
		t.Fatalf("%d faces in pieces, %d whole; want 1", len(res.Faces), len(want))
	}
	g, w := res.Faces[0], want[0]
	if g.Gender != w.Gender || g.AgeGroup != w.AgeGroup {
		t.Errorf("in pieces: %s %s; whole: %s %s", g.Gender, g.AgeGroup, w.Gender, w.AgeGroup)
	}
	// As a crop (the whole photo stretched to the net's input): read at a
	// reduced scale, with about the answer of the whole decode.
	gc, err := a.AnalyzeCrop(ctx, res.Image)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := a.AnalyzeCrop(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	if d := gc.GenderProb - wc.GenderProb; d > 0.05 || d < -0.05 {
		t.Errorf("AnalyzeCrop: gender probability %.3f in pieces, %.3f whole", gc.GenderProb, wc.GenderProb)
	}
	ann := res.Annotate()
	if ann.Bounds() != image.Rect(0, 0, 4000, 3000) {
		t.Fatalf("annotated %v, want the photo's 4000×3000", ann.Bounds())
	}
	// The box is drawn on the photo's pixels: its top edge differs from
	// the grey background; the background far from it does not.
	top := ann.RGBAAt((g.Box.Min.X+g.Box.Max.X)/2, g.Box.Min.Y+1)
	if top == ann.RGBAAt(100, 100) || ann.RGBAAt(100, 100).R < 110 || ann.RGBAAt(100, 100).R > 130 {
		t.Errorf("annotation: box edge %v, background %v", top, ann.RGBAAt(100, 100))
	}
}
