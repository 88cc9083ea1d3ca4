package agegender_test

import (
	"math"
	"testing"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/imageio"
)

// TestBuiltinModels checks the trained models shipped in the binary on
// real faces of the UTKFace test split (never seen in training): the crop
// path must be clearly better than chance, and the photo path (each face
// pasted, shifted and rotated into a larger canvas, then detected and
// aligned) must agree with the crop path on almost every face.
func TestBuiltinModels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built-in models on 24 faces; skipped in -short mode")
	}
	all, _, err := utkface.Load(utkDir(t))
	if err != nil {
		t.Fatal(err)
	}
	_, _, test := utkface.SplitSamples(all)
	faces := data.Spread(test, 24)
	a, err := agegender.New(agegender.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var genderOK, ageOneOff, found, agree int
	var maxDiff, absErr float64
	for i, s := range faces {
		img, _, err := imageio.DecodeFile(s.Path, imageio.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		crop, err := a.AnalyzeCrop(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if int(crop.Gender) == int(s.Gender) {
			genderOK++
		}
		if math.Abs(float64(int(crop.AgeGroup)-int(s.AgeGroup))) <= 1 {
			ageOneOff++
		}
		if !crop.HasAge() || crop.AgeStd <= 0 {
			t.Fatalf("the built-in model gives no age in years: %+v", crop)
		}
		absErr += math.Abs(crop.Age - float64(s.Age))
		canvas := noiseCanvas(520, 420, uint64(i+1))
		paste(canvas, img, 200+float64(i%5)*20, 190+float64(i%3)*15, float64(i%7-3)*3)
		got, err := a.Analyze(ctx, canvas)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			continue
		}
		found++
		if got[0].Gender == crop.Gender {
			agree++
		}
		maxDiff = math.Max(maxDiff, math.Abs(float64(gprob(got[0])-gprob(crop))))
	}
	n := len(faces)
	t.Logf("built-in models on %d test faces: gender %d/%d, age 1-off %d/%d, MAE %.1f years; photo path found %d, gender agrees %d, max |Δp(f)| %.3f",
		n, genderOK, n, ageOneOff, n, absErr/float64(n), found, agree, maxDiff)
	if mae := absErr / float64(n); mae > 9 {
		t.Errorf("mean absolute age error %.1f years on %d test faces; the built-in model gets about 5", mae, n)
	}
	if genderOK < n*3/4 {
		t.Errorf("gender right on %d of %d test faces; the built-in model should get about 9 in 10", genderOK, n)
	}
	if ageOneOff < n*3/4 {
		t.Errorf("age within one group on %d of %d test faces; expected about 9 in 10", ageOneOff, n)
	}
	if found < n*3/4 || agree < found*9/10 {
		t.Errorf("photo path: %d of %d faces found, gender agrees with the crop on %d", found, n, agree)
	}
}

// gprob is the probability of "f" in a face's gender answer.
func gprob(f agegender.Face) float32 {
	if f.Gender == agegender.Female {
		return f.GenderProb
	}
	return 1 - f.GenderProb
}
