package adience

import (
	"strings"
	"testing"
)

const fuzzHeader = "user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\tfiducial_yaw_angle\tfiducial_score\n"

// FuzzParseFold: a fold file of any content gives samples with labels in
// range and skipped-line reports, or an error; it never panics.
func FuzzParseFold(f *testing.F) {
	f.Add(fuzzHeader + "30601258@N03\t10399646885_67c7d20df9_o.jpg\t1\t(25, 32)\tf\t0\t414\t1086\t1383\t-115\t30\t17\n")
	f.Add(fuzzHeader + "u\ti.jpg\t2\t(25, 23)\tm\t0\t0\t1\t1\t0\t0\t0\nu\ti.jpg\t3\tNone\t\t0\t0\t1\t1\t0\t0\t0\n")
	f.Add(fuzzHeader + "u\ti.jpg\t2\t35\tu\n")
	f.Add("")
	f.Add(fuzzHeader + "a\tb\tc\t(8, 23)\tf\t1\t2\t3\t4\t5\t6\t7\n\n\n")
	f.Fuzz(func(t *testing.T, content string) {
		samples, skipped, err := ParseFold(strings.NewReader(content), "fuzz.txt", 2)
		if err != nil {
			return
		}
		for _, s := range samples {
			if s.AgeGroup < -1 || s.AgeGroup > 7 || s.Gender < -1 || s.Gender > 1 || s.Fold != 2 {
				t.Fatalf("out-of-range sample %+v", s)
			}
			parts := strings.Split(s.Path, "/")
			if len(parts) != 3 || parts[0] != "aligned" || parts[1] != s.Subject || strings.Contains(s.Subject, "/") {
				t.Fatalf("sample path is not aligned/<user>/<file>: %+v", s)
			}
			for _, p := range parts {
				if p == ".." || p == "." || p == "" {
					t.Fatalf("sample escapes the image root: %+v", s)
				}
			}
		}
		for _, sk := range skipped {
			if sk.Source != "fuzz.txt" || sk.Reason == "" {
				t.Fatalf("skipped entry without file or reason: %+v", sk)
			}
		}
	})
}
