// Package utkface loads the UTKFace "aligned & cropped" face set, whose
// labels live in the file names:
//
//	{age}_{gender}_{race}_{datetime}.jpg.chip.jpg
//
// with age in years (0..120), gender 0 male / 1 female, race 0..4 (white,
// black, asian, indian, other) and datetime a string of digits. A plain
// ".jpg" extension is accepted too. UTKFace has no subject ids, so the
// train/validation/test split is made per file by a hash of its name; see
// [SplitOf].
package utkface

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/agegender/agegender/data"
)

// MaxAge is the largest age ParseName accepts.
const MaxAge = 120

// ParseName parses a UTKFace file name (a base name, or a path whose base
// name is used) into a sample with Path set to name, the exact Age, its
// AgeGroup, Gender and Race. Subject is "" and Fold is -1. Names that do
// not follow the pattern strictly give an error saying what is wrong.
func ParseName(name string) (data.Sample, error) {
	base := filepath.Base(name)
	stem, ok := strings.CutSuffix(base, ".jpg.chip.jpg")
	if !ok {
		stem, ok = strings.CutSuffix(base, ".jpg")
	}
	if !ok {
		return data.Sample{}, fmt.Errorf("utkface: %q: name does not end in .jpg.chip.jpg or .jpg", base)
	}
	f := strings.Split(stem, "_")
	if len(f) != 4 {
		return data.Sample{}, fmt.Errorf("utkface: %q: want 4 fields age_gender_race_datetime, got %d", base, len(f))
	}
	age, err := strconv.Atoi(f[0])
	if err != nil || !allDigits(f[0]) || age > MaxAge {
		return data.Sample{}, fmt.Errorf("utkface: %q: age %q is not an integer in 0..%d", base, f[0], MaxAge)
	}
	var g data.Gender
	switch f[1] {
	case "0":
		g = data.Male
	case "1":
		g = data.Female
	default:
		return data.Sample{}, fmt.Errorf("utkface: %q: gender %q is not 0 (male) or 1 (female)", base, f[1])
	}
	if len(f[2]) != 1 || f[2][0] < '0' || f[2][0] > '4' {
		return data.Sample{}, fmt.Errorf("utkface: %q: race %q is not in 0..4", base, f[2])
	}
	if !allDigits(f[3]) {
		return data.Sample{}, fmt.Errorf("utkface: %q: datetime %q is not all digits", base, f[3])
	}
	return data.Sample{
		Path:     name,
		Gender:   g,
		Age:      age,
		AgeGroup: data.AgeGroupOf(age),
		Race:     int(f[2][0] - '0'),
		Fold:     -1,
	}, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Load lists dir (not recursively), parses every regular file's name with
// [ParseName] and returns the valid samples, sorted by name, with Path set to
// the full path. Files with malformed names are returned as skipped entries
// (Source is the path, Reason the parse error) and are not loaded. Load fails
// if dir cannot be read or holds no valid image names.
func Load(dir string) ([]data.Sample, []data.Skipped, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("utkface: reading image folder: %w (point the loader at the UTKFace images folder)", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var samples []data.Sample
	var skipped []data.Skipped
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		s, err := ParseName(p)
		if err != nil {
			// Drop the "utkface: "name": " prefix: Source already names the file.
			reason := err.Error()
			if i := strings.Index(reason, `": `); i >= 0 {
				reason = reason[i+3:]
			}
			skipped = append(skipped, data.Skipped{Source: p, Reason: reason})
			continue
		}
		samples = append(samples, s)
	}
	if len(samples) == 0 {
		return nil, skipped, errors.New("utkface: " + dir + ": no valid UTKFace image names (want age_gender_race_datetime.jpg.chip.jpg)")
	}
	return samples, skipped, nil
}

// Split names a part of the deterministic UTKFace split.
type Split int

// The three splits, with 80%, 10% and 10% of the files.
const (
	Train Split = iota
	Val
	Test
)

// String returns "train", "val" or "test".
func (s Split) String() string {
	switch s {
	case Train:
		return "train"
	case Val:
		return "val"
	case Test:
		return "test"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// SplitOf assigns a file to a split from its base name only, so the split
// does not depend on where the data set lives or on which other files
// exist. The rule, simple enough to reimplement anywhere:
//
//	h = FNV-1a 64-bit hash of the UTF-8 bytes of filepath.Base(path)
//	    (offset basis 14695981039346656037, prime 1099511628211)
//	h % 100 <  80  → Train
//	h % 100 <  90  → Val
//	otherwise      → Test
//
// In Python: h = 14695981039346656037; for b in name.encode(): h ^= b;
// h = (h * 1099511628211) % 2**64.
func SplitOf(path string) Split {
	h := fnv.New64a()
	h.Write([]byte(filepath.Base(path)))
	switch m := h.Sum64() % 100; {
	case m < 80:
		return Train
	case m < 90:
		return Val
	}
	return Test
}

// SplitSamples partitions samples by [SplitOf] of their Path, keeping order.
func SplitSamples(s []data.Sample) (train, val, test []data.Sample) {
	for _, x := range s {
		switch SplitOf(x.Path) {
		case Train:
			train = append(train, x)
		case Val:
			val = append(val, x)
		default:
			test = append(test, x)
		}
	}
	return train, val, test
}
