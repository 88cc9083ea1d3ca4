package utkface

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/internal/datatest"
)

func TestParseName(t *testing.T) {
	s, err := ParseName("/x/26_1_2_20170116174525125.jpg.chip.jpg")
	if err != nil {
		t.Fatal(err)
	}
	want := data.Sample{Path: "/x/26_1_2_20170116174525125.jpg.chip.jpg", Gender: data.Female, Age: 26, AgeGroup: 4, Race: 2, Fold: -1}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if s, err := ParseName("1_0_4_2017.jpg"); err != nil || s.Age != 1 || s.Gender != data.Male || s.Race != 4 || s.AgeGroup != 0 {
		t.Errorf("plain .jpg: %+v %v", s, err)
	}
	bad := map[string]string{
		"39_1_20170116174525125.jpg.chip.jpg":    "4 fields",
		"24_0_1_20170116220224657 .jpg.chip.jpg": "datetime",
		"55_0_0_20170116232725357jpg.chip.jpg":   "datetime",
		"121_0_0_2017.jpg.chip.jpg":              "age",
		"-1_0_0_2017.jpg.chip.jpg":               "age",
		"+5_0_0_2017.jpg.chip.jpg":               "age",
		"5_2_0_2017.jpg.chip.jpg":                "gender",
		"5_0_5_2017.jpg.chip.jpg":                "race",
		"5_0_0_2017.png":                         ".jpg",
		"5_0_0_.jpg":                             "datetime",
		"5_0_0_2017_1.jpg":                       "4 fields",
	}
	for name, frag := range bad {
		_, err := ParseName(name)
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParseName(%q) error = %v, want one mentioning %q", name, err, frag)
		}
	}
}

func TestSplitOf(t *testing.T) {
	// Pinned values, so a reimplementation (e.g. in Python) can be checked:
	// FNV-1a 64 of "" is 14695981039346656037, %100 = 37 → Train.
	if SplitOf("") != Train || SplitOf("/a/b/") != SplitOf("b") {
		t.Error("SplitOf must hash the base name")
	}
	// Values computed independently in Python (see the SplitOf doc).
	for _, c := range []struct {
		name string
		want Split
	}{
		{"", Train}, // h%100 = 37
		{"1_0_0_20161219140623097.jpg.chip.jpg", Train},    // 19
		{"/d/100_1_0_20170110183726390.jpg.chip.jpg", Val}, // 89
		{"10_0_0_20170110220111082.jpg.chip.jpg", Test},    // 92
	} {
		if got := SplitOf(c.name); got != c.want {
			t.Errorf("SplitOf(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
	if _, _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no valid") {
		t.Errorf("Load of an empty folder: %v", err)
	}
}

func TestLoadReal(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	samples, skipped, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Logf("skipped %s", s)
	}
	if len(samples) != wantValid || len(skipped) != wantSkipped {
		t.Errorf("got %d valid, %d skipped; want %d, %d", len(samples), len(skipped), wantValid, wantSkipped)
	}
	var groups [data.NumAgeGroups]int
	var genders [2]int
	for _, s := range samples {
		groups[s.AgeGroup]++
		genders[s.Gender]++
	}
	t.Logf("age groups %v, genders m/f %v", groups, genders)
	if groups != wantGroups || genders != wantGenders {
		t.Errorf("groups %v genders %v; want %v %v", groups, genders, wantGroups, wantGenders)
	}
	train, val, test := SplitSamples(samples)
	t.Logf("split train/val/test = %d/%d/%d", len(train), len(val), len(test))
	if len(train)+len(val)+len(test) != len(samples) {
		t.Fatal("split loses samples")
	}
	if len(train) != wantSplit[0] || len(val) != wantSplit[1] || len(test) != wantSplit[2] {
		t.Errorf("split sizes %d/%d/%d, want %v", len(train), len(val), len(test), wantSplit)
	}
	n := float64(len(samples))
	if f := float64(len(train)) / n; f < 0.78 || f > 0.82 {
		t.Errorf("train fraction %.3f not near 0.8", f)
	}
	for _, part := range [][]data.Sample{val, test} {
		if f := float64(len(part)) / n; f < 0.09 || f > 0.11 {
			t.Errorf("val/test fraction %.3f not near 0.1", f)
		}
	}
	// Determinism: a second load and split give the same result.
	again, _, _ := Load(dir)
	tr2, _, _ := SplitSamples(again)
	if len(tr2) != len(train) || tr2[0] != train[0] || tr2[len(tr2)-1] != train[len(train)-1] {
		t.Error("second load/split differs")
	}
}

// Real counts of ../shared/data/utkface/images.
const (
	wantValid   = 21344
	wantSkipped = 4
)

var (
	wantGroups  = [data.NumAgeGroups]int{1434, 812, 909, 1914, 7776, 3459, 2208, 2832}
	wantGenders = [2]int{11156, 10188}
	wantSplit   = [3]int{17108, 2168, 2068}
)
