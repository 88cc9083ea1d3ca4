// Package adience loads the metadata of the Adience benchmark (Eidinger,
// Enbar & Hassner 2014) as used by Levi & Hassner (2015): five
// subject-exclusive folds, each a tab-separated file fold_<k>_data.txt with a
// header line and the columns
//
//	user_id original_image face_id age gender x y dx dy tilt_ang fiducial_yaw_angle fiducial_score
//
// # Age labels
//
// Most rows give one of the eight groups as an interval "(lo, hi)". The
// others are normalised as follows:
//
//	age field        group    rule
//	"(0, 2)" …       same     the 8 groups "(0, 2)" "(4, 6)" "(8, 12)" "(15, 20)"
//	"(60, 100)"               "(25, 32)" "(38, 43)" "(48, 53)" "(60, 100)" map directly
//	"(25, 23)"       25-32    a known typo of "(25, 32)"
//	"(27, 32)"       25-32    midpoint 29 (see below)
//	"(38, 42)"       38-43    midpoint 40
//	"(38, 48)"       38-43    midpoint 43
//	"(8, 23)"        15-20    midpoint 15
//	"35"             38-43    a single age: data.AgeGroupOf(35)
//	"None"           unknown  row kept: it still has a gender label
//
// Any other interval "(lo, hi)" with 0 <= lo <= hi maps to
// data.AgeGroupOf((lo+hi)/2), the group of its midpoint rounded down (for an
// interval inside a group that is the group itself; in a gap it follows the
// nearest-boundary rule of [data.AgeGroupOf]). Intervals with lo > hi (other
// than the known typo), negative ages and unparsable fields are malformed.
//
// # Gender labels
//
// "m" is data.Male, "f" data.Female; "u" and "" are data.UnknownGender and
// the row is kept for its age label. Other values are malformed.
//
// Malformed rows (a wrong number of columns, an unparsable age or gender, an
// empty user id, image name or face id) are reported as [data.Skipped] with
// the file and line number, and not loaded.
package adience

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agegender/agegender/data"
)

// NumFolds is the number of Adience folds.
const NumFolds = 5

// numColumns is the number of tab-separated columns of a fold file.
const numColumns = 12

// FoldFile returns the file name of fold k, "fold_<k>_data.txt".
func FoldFile(k int) string { return fmt.Sprintf("fold_%d_data.txt", k) }

// ParseFold reads one fold file from r. name is used in skipped entries and
// errors (normally the file path) and fold is stored in every sample's Fold.
// A first line starting with "user_id" is taken as the header and ignored;
// blank lines are ignored. Each sample's Path is the aligned image path
// relative to the images root (see [ImagePath]), Subject is the user id,
// Age and Race are -1. The error is non-nil only if r fails.
func ParseFold(r io.Reader, name string, fold int) ([]data.Sample, []data.Skipped, error) {
	var samples []data.Sample
	var skipped []data.Skipped
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 && strings.HasPrefix(text, "user_id") {
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		s, err := parseRow(text)
		if err != nil {
			skipped = append(skipped, data.Skipped{Source: name, Line: line, Reason: err.Error()})
			continue
		}
		s.Fold = fold
		samples = append(samples, s)
	}
	if err := sc.Err(); err != nil {
		return samples, skipped, fmt.Errorf("adience: reading %s line %d: %w", name, line+1, err)
	}
	return samples, skipped, nil
}

func parseRow(text string) (data.Sample, error) {
	f := strings.Split(text, "\t")
	if len(f) != numColumns {
		return data.Sample{}, fmt.Errorf("want %d tab-separated columns, got %d", numColumns, len(f))
	}
	user, orig, face := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
	if user == "" || orig == "" || face == "" {
		return data.Sample{}, errors.New("empty user_id, original_image or face_id")
	}
	if strings.ContainsAny(user+orig+face, `/\`) || user == ".." || user == "." {
		return data.Sample{}, errors.New("user_id, original_image or face_id contains a path separator")
	}
	group, err := ParseAge(f[3])
	if err != nil {
		return data.Sample{}, err
	}
	g, err := ParseGender(f[4])
	if err != nil {
		return data.Sample{}, err
	}
	return data.Sample{
		Path:     RelPath(user, face, orig),
		Gender:   g,
		Age:      -1,
		AgeGroup: group,
		Race:     -1,
		Subject:  user,
		Fold:     -1,
	}, nil
}

// RelPath returns the slash-separated path of an aligned face relative to
// the images root: aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>.
func RelPath(user, faceID, original string) string {
	return path.Join("aligned", user, "landmark_aligned_face."+faceID+"."+original)
}

// ImagePath returns the file of sample s under the images root, that is
// root joined with s.Path (which [ParseFold] sets to [RelPath]).
func ImagePath(root string, s data.Sample) string {
	return filepath.Join(root, filepath.FromSlash(s.Path))
}

// ParseGender parses the gender column: "m", "f", or "u"/"" for unknown.
func ParseGender(s string) (data.Gender, error) {
	switch strings.TrimSpace(s) {
	case "m":
		return data.Male, nil
	case "f":
		return data.Female, nil
	case "u", "":
		return data.UnknownGender, nil
	}
	return data.UnknownGender, fmt.Errorf("gender %q is not m, f, u or empty", s)
}

// ParseAge parses the age column into an age group following the rules in
// the package documentation. "None" gives data.UnknownAge and no error.
func ParseAge(s string) (data.AgeGroup, error) {
	s = strings.TrimSpace(s)
	if s == "None" {
		return data.UnknownAge, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return data.UnknownAge, fmt.Errorf("age %q is negative", s)
		}
		return data.AgeGroupOf(n), nil
	}
	inner, ok := strings.CutPrefix(s, "(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	var lo, hi int
	if ok {
		a, b, found := strings.Cut(inner, ",")
		var err1, err2 error
		lo, err1 = strconv.Atoi(strings.TrimSpace(a))
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
		ok = found && err1 == nil && err2 == nil
	}
	if !ok {
		return data.UnknownAge, fmt.Errorf("age %q is not \"(lo, hi)\", an integer or None", s)
	}
	if lo == 25 && hi == 23 {
		return data.AgeGroupOf(25), nil // known typo of (25, 32)
	}
	if lo < 0 || lo > hi {
		return data.UnknownAge, fmt.Errorf("age interval %q is not 0 <= lo <= hi", s)
	}
	return data.AgeGroupOf((lo + hi) / 2), nil
}

// LoadFolds reads fold_0_data.txt … fold_4_data.txt from dir and returns
// the samples of each fold and every skipped row. It fails if a fold file
// cannot be read or holds no valid rows.
func LoadFolds(dir string) ([NumFolds][]data.Sample, []data.Skipped, error) {
	var folds [NumFolds][]data.Sample
	var skipped []data.Skipped
	for k := range NumFolds {
		p := filepath.Join(dir, FoldFile(k))
		f, err := os.Open(p)
		if err != nil {
			return folds, skipped, fmt.Errorf("adience: %w (want the five Adience fold_<k>_data.txt files in %s)", err, dir)
		}
		s, sk, err := ParseFold(f, p, k)
		f.Close()
		if err != nil {
			return folds, skipped, err
		}
		if len(s) == 0 {
			return folds, skipped, fmt.Errorf("adience: %s: no valid rows", p)
		}
		folds[k] = s
		skipped = append(skipped, sk...)
	}
	return folds, skipped, nil
}

// Protocol returns the k-th split of the subject-exclusive 5-fold
// protocol: test is fold k, train is the other four folds concatenated in
// fold order. It panics if k is not in 0..4.
func Protocol(folds [NumFolds][]data.Sample, k int) (train, test []data.Sample) {
	if k < 0 || k >= NumFolds {
		panic(fmt.Sprintf("adience: Protocol fold %d out of range 0..%d", k, NumFolds-1))
	}
	for j, f := range folds {
		if j != k {
			train = append(train, f...)
		}
	}
	return train, append([]data.Sample(nil), folds[k]...)
}

// CheckDisjoint verifies that no subject (user id) appears in two folds,
// which the protocol's subject exclusivity relies on.
func CheckDisjoint(folds [NumFolds][]data.Sample) error {
	owner := make(map[string]int)
	var errs []error
	for k, f := range folds {
		for _, s := range f {
			if j, ok := owner[s.Subject]; ok && j != k {
				errs = append(errs, fmt.Errorf("adience: subject %q appears in folds %d and %d", s.Subject, j, k))
				owner[s.Subject] = k // report each pair once per switch
				continue
			}
			owner[s.Subject] = k
		}
	}
	return errors.Join(errs...)
}

// ExistingOnly returns the samples whose image exists as a regular file
// under root (see [ImagePath]), in order, and how many are missing.
func ExistingOnly(root string, s []data.Sample) (present []data.Sample, missing int) {
	for _, x := range s {
		if fi, err := os.Stat(ImagePath(root, x)); err == nil && fi.Mode().IsRegular() {
			present = append(present, x)
		} else {
			missing++
		}
	}
	return present, missing
}
