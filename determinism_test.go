package agegender_test

import (
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
		first, err := a.AnalyzeBytes(b)
		if err != nil || len(first) != 1 {
			t.Fatalf("%s: %d faces, err %v; want the one face of testdata/face.jpg", det, len(first), err)
		}
		for i := range 3 {
			got, err := a.AnalyzeBytes(b)
			if err != nil {
				t.Fatal(err)
			}
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
