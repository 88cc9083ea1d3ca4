package predict_test

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
)

// TestProbs runs the built-in gender model on a synthetic crop, centre and
// 10-crop: probabilities are well formed, a mirror-symmetric image gives
// the same 10-crop answer as its mirror, and bad input is an error.
func TestProbs(t *testing.T) {
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Builtin("gender")
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.NewPredictor(b, m, backend.InferenceImpl(b))
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 100, 100))
	mir := image.NewRGBA(img.Bounds())
	for y := 0; y < 100; y++ {
		for x := 0; x < 100; x++ {
			c := color.RGBA{uint8(x * 2), uint8(y * 2), uint8((x * y) % 256), 255}
			img.Set(x, y, c)
			mir.Set(99-x, y, c)
		}
	}
	pix := [][]uint8{predict.Resized(p, img), predict.Resized(p, mir)}
	for _, mode := range []predict.Mode{predict.Center, predict.TenCrop} {
		out, err := predict.Probs(p, pix, mode)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range out {
			if len(pr) != 2 || math.Abs(float64(pr[0]+pr[1])-1) > 1e-5 {
				t.Fatalf("%s: probabilities %v", mode, pr)
			}
		}
		if mode == predict.TenCrop && math.Abs(float64(out[0][0]-out[1][0])) > 1e-3 {
			t.Errorf("10-crop of an image and of its mirror differ: %v vs %v", out[0], out[1])
		}
	}
	if _, err := predict.Probs(p, [][]uint8{{1, 2, 3}}, predict.Center); err == nil {
		t.Error("a wrongly sized image was accepted")
	}
}
