package transfer

import (
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
)

func TestScratchScale(t *testing.T) {
	sh := sharedDir(t)
	s, _, err := utkface.Load(filepath.Join(sh, "data/utkface/images"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, test := utkface.SplitSamples(s)
	test = test[:48]
	b, _ := backend.Open("")
	for _, sc := range [][2]float32{{1, 0}, {1.0 / 255, 0}, {1 / 127.5, -1}} {
		bb := FaceRes
		bb.Scale, bb.Offset = sc[0], sc[1]
		e, err := NewExtractor(b, filepath.Join(sh, "models/tfjs"), bb, "gender_pred/Sigmoid", "age_pred/Softmax")
		if err != nil {
			t.Fatal(err)
		}
		f, _, per, err := e.ExtractSamples(test, 2)
		_ = f
		if err != nil {
			t.Fatal(err)
		}
		// rerun through Run to get both outputs
		imgsF, _, _, _ := e.ExtractSamples(test, 2)
		_ = imgsF
		okF, okM := 0, 0
		ageErr := 0.0
		for i, row := range f.Rows {
			smp := test[f.Index[i]]
			_ = row
			p := row[0]
			if (p > 0.5) == (smp.Gender == data.Male) {
				okM++
			}
			if (p > 0.5) == (smp.Gender == data.Female) {
				okF++
			}
		}
		t.Logf("scale %v: per image %v, acc if >0.5 means male: %d/%d, female: %d/%d, %v", sc, per, okM, len(f.Rows), okF, len(f.Rows), ageErr)
	}
}
