package utkface

import (
	"strings"
	"testing"
)

// FuzzParseName: any name either parses into a sample whose labels are in
// range, or gives an error that quotes the name; it never panics.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"25_1_2_20170116174525125.jpg.chip.jpg", "1_0_0_1.jpg", "61_1_20170109142408075.jpg.chip.jpg",
		"55_0_0_20170116232725357jpg.chip.jpg", "", "_", "___.jpg", "999_0_0_1.jpg", "-1_0_0_1.jpg", "1_2_0_1.jpg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseName(name)
		if err != nil {
			if !strings.Contains(err.Error(), "utkface") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			return
		}
		if s.Age < 0 || s.Age > MaxAge || s.Race < 0 || s.Race > 4 || s.AgeGroup < 0 || s.AgeGroup > 7 {
			t.Fatalf("%q parsed to out-of-range labels %+v", name, s)
		}
	})
}
