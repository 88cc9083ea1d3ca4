package transfer

import (
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/utkface"
)

func TestScratchScale(t *testing.T) {
	sh := sharedDir(t)
	s, _, err := utkface.Load(filepath.Join(sh, "data/utkface/images"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, test := utkface.SplitSamples(s)
	test = test[:64]
	paths := []string{}
	for _, x := range test {
		paths = append(paths, x.Path)
	}
	cache, _ := prep.BuildCache(paths, FaceRes.Config(), nil)
	imgs := [][]uint8{}
	for i := 0; i < cache.Len(); i++ {
		imgs = append(imgs, cache.Pixels(i))
	}
	b, _ := backend.Open("")
	for _, sc := range [][2]float32{{1, 0}, {1.0 / 255, 0}, {1 / 127.5, -1}} {
		bb := FaceRes
		bb.Scale, bb.Offset = sc[0], sc[1]
		e, err := NewExtractor(b, filepath.Join(sh, "models/tfjs"), bb, "gender_pred/Sigmoid", "age_pred/Softmax")
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Run(imgs)
		if err != nil {
			t.Fatal(err)
		}
		okM, ageAbs := 0, 0.0
		for i := range r[0] {
			smp := test[cache.Index(i)]
			if (r[0][i][0] > 0.5) == (smp.Gender == data.Male) {
				okM++
			}
			ex := 0.0
			for a, p := range r[1][i] {
				ex += float64(a) * float64(p)
			}
			d := ex - float64(smp.Age)
			if d < 0 {
				d = -d
			}
			ageAbs += d
		}
		t.Logf("scale %v: >0.5=male acc %d/%d; age MAE %.1f", sc, okM, len(r[0]), ageAbs/float64(len(r[0])))
	}
}
