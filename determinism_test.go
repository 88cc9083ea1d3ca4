package agegender_test

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/agegender/agegender"
)

// TestSameBytesSameAnswer: the same photo bytes give the same faces, boxes,
// landmarks and probabilities on every call, for both detectors. (Pigo's
// pupil search draws from the global math/rand, so only its boxes and
// detection scores are compared.)
func TestSameBytesSameAnswer(t *testing.T) {
	b, err := os.ReadFile("testdata/face.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for _, det := range []string{"blazeface", "pigo"} {
		a, err := agegender.New(agegender.Options{Detector: det})
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.AnalyzeReader(ctx, bytes.NewReader(b))
		if err != nil || len(res.Faces) != 1 {
			t.Fatalf("%s: %v, err %v; want the one face of testdata/face.jpg", det, res, err)
		}
		first := res.Faces
		for i := range 3 {
			res, err := a.AnalyzeReader(ctx, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			got := res.Faces
			if det == "pigo" {
				if len(got) != 1 || got[0].Box != first[0].Box || got[0].DetectionScore != first[0].DetectionScore {
					t.Errorf("pigo call %d: %+v, first %+v", i, got, first)
				}
				continue
			}
			if !reflect.DeepEqual(got, first) {
				t.Errorf("%s call %d: %+v\nfirst: %+v", det, i, got, first)
			}
		}
		a.Close()
	}
}
