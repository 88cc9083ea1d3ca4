package adience

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/internal/datatest"
)

func TestParseAge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // group name or "unknown"
	}{
		{"(0, 2)", "0-2"}, {"(4, 6)", "4-6"}, {"(8, 12)", "8-12"}, {"(15, 20)", "15-20"},
		{"(25, 32)", "25-32"}, {"(38, 43)", "38-43"}, {"(48, 53)", "48-53"}, {"(60, 100)", "60-100"},
		{"(25, 23)", "25-32"}, // typo of (25, 32)
		{"(27, 32)", "25-32"}, // midpoint 29
		{"(38, 42)", "38-43"}, // midpoint 40
		{"(38, 48)", "38-43"}, // midpoint 43
		{"(8, 23)", "15-20"},  // midpoint 15
		{"35", "38-43"},       // AgeGroupOf(35): tie between 32 and 38 goes older
		{"13", "8-12"}, {"22", "15-20"}, {"23", "25-32"}, {"34", "25-32"},
		{"45", "38-43"}, {"55", "48-53"}, {"57", "60-100"}, {"2", "0-2"}, {"3", "4-6"},
		{"None", "unknown"},
	} {
		g, err := ParseAge(c.in)
		if err != nil || g.String() != c.want {
			t.Errorf("ParseAge(%q) = %v, %v; want %s", c.in, g, err, c.want)
		}
	}
	for _, bad := range []string{"", "(1, )", "(30, 20)", "(-1, 2)", "-4", "abc", "(1 2)", "25-32"} {
		if g, err := ParseAge(bad); err == nil {
			t.Errorf("ParseAge(%q) = %v, want an error", bad, g)
		}
	}
}

func TestParseGender(t *testing.T) {
	for in, want := range map[string]data.Gender{"m": data.Male, "f": data.Female, "u": data.UnknownGender, "": data.UnknownGender} {
		if g, err := ParseGender(in); err != nil || g != want {
			t.Errorf("ParseGender(%q) = %v, %v", in, g, err)
		}
	}
	if _, err := ParseGender("x"); err == nil {
		t.Error(`ParseGender("x") succeeded`)
	}
}

const header = "user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\tfiducial_yaw_angle\tfiducial_score\n"

func TestParseFold(t *testing.T) {
	in := header +
		"u1\ta.jpg\t1\t(25, 23)\tf\t0\t414\t1086\t1383\t-115\t30\t17\n" +
		"u1\tb.jpg\t2\tNone\tm\t0\t0\t1\t1\t0\t0\t9\r\n" +
		"u2\tc.jpg\t3\t(8, 12)\t\t0\t0\t1\t1\t0\t0\t9\n" +
		"u2\td.jpg\t4\t(8, 12)\tu\t0\t0\n" + // line 5: too few columns
		"u2\te.jpg\t5\told\tf\t0\t0\t1\t1\t0\t0\t9\n" + // line 6: bad age
		"\n" +
		"u3\tf.jpg\t6\t35\tq\t0\t0\t1\t1\t0\t0\t9\n" // line 8: bad gender
	s, sk, err := ParseFold(strings.NewReader(in), "fold_9_data.txt", 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 3 {
		t.Fatalf("got %d samples, want 3: %+v", len(s), s)
	}
	want := data.Sample{Path: "aligned/u1/landmark_aligned_face.1.a.jpg", Gender: data.Female, Age: -1, AgeGroup: 4, Race: -1, Subject: "u1", Fold: 9}
	if s[0] != want {
		t.Errorf("sample 0 = %+v, want %+v", s[0], want)
	}
	if s[1].AgeGroup != data.UnknownAge || s[1].Gender != data.Male || s[2].Gender != data.UnknownGender || s[2].AgeGroup != 2 {
		t.Errorf("samples 1, 2 = %+v %+v", s[1], s[2])
	}
	if len(sk) != 3 || sk[0].Line != 5 || sk[1].Line != 6 || sk[2].Line != 8 {
		t.Fatalf("skipped = %v", sk)
	}
	for i, frag := range []string{"columns", "age", "gender"} {
		if !strings.Contains(sk[i].Error(), "fold_9_data.txt:") || !strings.Contains(sk[i].Reason, frag) {
			t.Errorf("skipped[%d] = %v, want file name and %q", i, sk[i], frag)
		}
	}
}

func TestImagePathExistingOnly(t *testing.T) {
	root := t.TempDir()
	in := header +
		"u1\ta.jpg\t1\t(0, 2)\tf\t0\t0\t1\t1\t0\t0\t9\n" +
		"u1\tb.jpg\t2\t(0, 2)\tf\t0\t0\t1\t1\t0\t0\t9\n" +
		"u2\tc.jpg\t3\t(0, 2)\tf\t0\t0\t1\t1\t0\t0\t9\n"
	s, _, err := ParseFold(strings.NewReader(in), "t", 0)
	if err != nil || len(s) != 3 {
		t.Fatal(err, len(s))
	}
	p := ImagePath(root, s[0])
	if want := filepath.Join(root, "aligned", "u1", "landmark_aligned_face.1.a.jpg"); p != want {
		t.Fatalf("ImagePath = %s, want %s", p, want)
	}
	// Create the first and third images (fake JPEG bytes), and a folder
	// in place of the second, which must not count as an image.
	for _, i := range []int{0, 2} {
		q := ImagePath(root, s[i])
		if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(q, []byte{0xFF, 0xD8, 0xFF, 0xD9}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(ImagePath(root, s[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	present, missing := ExistingOnly(root, s)
	if missing != 1 || len(present) != 2 || present[0].Path != s[0].Path || present[1].Path != s[2].Path {
		t.Errorf("ExistingOnly = %v, %d", present, missing)
	}
}

func TestProtocolAndDisjoint(t *testing.T) {
	var folds [NumFolds][]data.Sample
	for k := range folds {
		folds[k] = []data.Sample{{Subject: string(rune('a' + k)), Fold: k}, {Subject: string(rune('a' + k)), Fold: k}}
	}
	if err := CheckDisjoint(folds); err != nil {
		t.Fatal(err)
	}
	tr, te := Protocol(folds, 2)
	if len(tr) != 8 || len(te) != 2 || te[0].Fold != 2 {
		t.Errorf("Protocol: %d train, %d test", len(tr), len(te))
	}
	for _, s := range tr {
		if s.Fold == 2 {
			t.Error("test fold in train")
		}
	}
	folds[4] = append(folds[4], data.Sample{Subject: "a"})
	if err := CheckDisjoint(folds); err == nil || !strings.Contains(err.Error(), `"a" appears in folds 0 and 4`) {
		t.Errorf("CheckDisjoint = %v", err)
	}
}

func TestLoadFoldsMissing(t *testing.T) {
	if _, _, err := LoadFolds(t.TempDir()); err == nil || !strings.Contains(err.Error(), "fold_0_data.txt") {
		t.Errorf("LoadFolds(empty dir) = %v", err)
	}
}

func TestLoadFoldsReal(t *testing.T) {
	dir := datatest.SharedDir(t, "adience/folds")
	folds, skipped, err := LoadFolds(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Logf("skipped %s", s)
	}
	if len(skipped) != 0 {
		t.Errorf("%d rows skipped, want 0", len(skipped))
	}
	wantRows := [NumFolds]int{4496, 3745, 3953, 3459, 3834}
	total := 0
	for k, f := range folds {
		total += len(f)
		if len(f) != wantRows[k] {
			t.Errorf("fold %d: %d rows, want %d", k, len(f), wantRows[k])
		}
		for _, s := range f {
			if s.Fold != k {
				t.Fatalf("fold %d holds a sample with Fold %d", k, s.Fold)
			}
		}
		train, test := Protocol(folds, k)
		if len(test) != wantRows[k] || len(train) != 19487-wantRows[k] {
			t.Errorf("protocol %d: %d train, %d test", k, len(train), len(test))
		}
	}
	if total != 19487 {
		t.Errorf("total %d rows, want 19487", total)
	}
	if err := CheckDisjoint(folds); err != nil {
		t.Errorf("folds are not subject-disjoint: %v", err)
	}

	// Per-label counts of fold 0.
	var genders [3]int                  // unknown, m, f
	var ages [data.NumAgeGroups + 1]int // unknown, then the 8 groups
	for _, s := range folds[0] {
		genders[s.Gender+1]++
		ages[s.AgeGroup+1]++
	}
	if want := [3]int{489, 2049, 1958}; genders != want {
		t.Errorf("fold 0 genders (u, m, f) = %v, want %v", genders, want)
	}
	if want := [9]int{52, 960, 508, 216, 156, 1652, 586, 225, 141}; ages != want {
		t.Errorf("fold 0 ages (unknown, 0-2 … 60-100) = %v, want %v", ages, want)
	}
	if n := len(data.Filter(folds[0], data.TaskGender)); n != 4007 {
		t.Errorf("fold 0 gender-labelled = %d, want 4007", n)
	}
	if n := len(data.Filter(folds[0], data.TaskAge)); n != 4444 {
		t.Errorf("fold 0 age-labelled = %d, want 4444", n)
	}
}
