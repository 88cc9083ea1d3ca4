// Package data defines the label types shared by the agegender datasets,
// loaders and trainers: [Gender], [AgeGroup], [Task] and [Sample].
//
// The age groups are the eight classes of the Adience benchmark used by
// Levi & Hassner (2015). Datasets that record an exact age in years (such as
// UTKFace) are mapped onto those groups with [AgeGroupOf].
package data

import (
	"fmt"
	"strconv"
	"strings"
)

// Gender is the gender label of a face.
type Gender int8

// Gender values. The numeric values of Male and Female are the class
// indices used by [TaskGender].
const (
	UnknownGender Gender = -1
	Male          Gender = 0
	Female        Gender = 1
)

// String returns "m", "f" or "u" (unknown).
func (g Gender) String() string {
	switch g {
	case Male:
		return "m"
	case Female:
		return "f"
	}
	return "u"
}

// AgeGroup is one of the eight Adience age groups, or UnknownAge.
// The numeric value is the class index used by [TaskAge].
type AgeGroup int8

// UnknownAge marks a sample without an age label.
const UnknownAge AgeGroup = -1

// NumAgeGroups is the number of Adience age groups.
const NumAgeGroups = 8

// AgeGroupNames are the names of the age groups, indexed by AgeGroup.
var AgeGroupNames = [NumAgeGroups]string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}

// ageBounds are the inclusive [lo, hi] ages of each group.
var ageBounds = [NumAgeGroups][2]int{{0, 2}, {4, 6}, {8, 12}, {15, 20}, {25, 32}, {38, 43}, {48, 53}, {60, 100}}

// String returns the group name, such as "25-32", or "unknown".
func (a AgeGroup) String() string {
	if a < 0 || int(a) >= NumAgeGroups {
		return "unknown"
	}
	return AgeGroupNames[a]
}

// Bounds returns the inclusive age range of the group in years.
// It returns (-1, -1) for UnknownAge or an out-of-range value.
func (a AgeGroup) Bounds() (lo, hi int) {
	if a < 0 || int(a) >= NumAgeGroups {
		return -1, -1
	}
	return ageBounds[a][0], ageBounds[a][1]
}

// ParseAgeGroup parses a group name such as "25-32" (see [AgeGroupNames]).
func ParseAgeGroup(s string) (AgeGroup, error) {
	s = strings.TrimSpace(s)
	for i, n := range AgeGroupNames {
		if s == n {
			return AgeGroup(i), nil
		}
	}
	return UnknownAge, fmt.Errorf("data: unknown age group %q: want one of %s", s, strings.Join(AgeGroupNames[:], ", "))
}

// AgeGroupOf maps an age in years to its Adience group.
//
// The Adience groups leave gaps (there is no group for 3, 7, 13-14, 21-24,
// 33-37, 44-47 or 54-59 years). An age inside a gap goes to the group whose
// nearest boundary is closest in years; a tie goes to the older group. Ages
// above 100 go to 60-100 and negative ages are UnknownAge. The full table:
//
//	age      group    reason
//	0-2      0-2
//	3        4-6      1 year from 2 and from 4: tie, older
//	4-6      4-6
//	7        8-12     1 year from 6 and from 8: tie, older
//	8-12     8-12
//	13       8-12     1 from 12, 2 from 15
//	14       15-20    2 from 12, 1 from 15
//	15-20    15-20
//	21-22    15-20    nearer 20 than 25
//	23-24    25-32    nearer 25 than 20
//	25-32    25-32
//	33-34    25-32    nearer 32 than 38
//	35       38-43    3 from 32 and from 38: tie, older
//	36-37    38-43
//	38-43    38-43
//	44-45    38-43    nearer 43 than 48
//	46-47    48-53    nearer 48 than 43
//	48-53    48-53
//	54-56    48-53    nearer 53 than 60
//	57-59    60-100   nearer 60 than 53
//	60-      60-100
func AgeGroupOf(age int) AgeGroup {
	if age < 0 {
		return UnknownAge
	}
	for g := 0; g < NumAgeGroups; g++ {
		lo, hi := ageBounds[g][0], ageBounds[g][1]
		if age <= hi || g == NumAgeGroups-1 {
			if age >= lo || g == 0 {
				return AgeGroup(g)
			}
			// age lies in the gap between group g-1 and group g.
			if age-ageBounds[g-1][1] < lo-age {
				return AgeGroup(g - 1)
			}
			return AgeGroup(g) // nearer the older group, or a tie
		}
	}
	return NumAgeGroups - 1
}

// Task is what a network is trained to tell. Its JSON form is its name
// (String), as in model files.
type Task int

// The two tasks of Levi & Hassner (2015), and one net for both.
const (
	TaskGender Task = iota // 2 classes: m, f
	TaskAge                // 8 classes: the Adience age groups
	// TaskGenderAge is one net for gender and age in whole years
	// (model.HeadsGenderAge): 2 gender outputs, then AgeYears age outputs.
	// Its samples are those labelled with a gender (Label is the gender).
	TaskGenderAge
)

// AgeYears is the number of age outputs of a TaskGenderAge net: whole
// years 0 to 100 (model.AgeBins).
const AgeYears = 101

// Classes returns the number of outputs of a net for the task.
func (t Task) Classes() int {
	switch t {
	case TaskAge:
		return NumAgeGroups
	case TaskGenderAge:
		return 2 + AgeYears
	}
	return 2
}

// ClassNames returns the names of the outputs in index order: genders,
// age groups, or genders then years ("0" to "100"). The caller may modify
// the returned slice.
func (t Task) ClassNames() []string {
	switch t {
	case TaskAge:
		return append([]string(nil), AgeGroupNames[:]...)
	case TaskGenderAge:
		names := []string{"m", "f"}
		for y := range AgeYears {
			names = append(names, strconv.Itoa(y))
		}
		return names
	}
	return []string{"m", "f"}
}

// String returns "gender", "age" or "gender+age".
func (t Task) String() string {
	switch t {
	case TaskGender:
		return "gender"
	case TaskAge:
		return "age"
	case TaskGenderAge:
		return "gender+age"
	}
	return fmt.Sprintf("Task(%d)", int(t))
}

// ParseTask parses "gender", "age", or "both" or "gender+age"
// (TaskGenderAge).
func ParseTask(s string) (Task, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "gender":
		return TaskGender, nil
	case "age":
		return TaskAge, nil
	case "both", "gender+age":
		return TaskGenderAge, nil
	}
	return 0, fmt.Errorf("data: unknown task %q: want \"gender\", \"age\" or \"both\"", s)
}

// MarshalText writes the task's name (String).
func (t Task) MarshalText() ([]byte, error) {
	if t < TaskGender || t > TaskGenderAge {
		return nil, fmt.Errorf("data: no such task %d", int(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText reads a name written by MarshalText (or any ParseTask
// accepts).
func (t *Task) UnmarshalText(b []byte) error {
	v, err := ParseTask(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Label returns the sample's class index for the task, or -1 if the sample
// has no label for it.
func (t Task) Label(s Sample) int {
	switch t {
	case TaskGender, TaskGenderAge:
		if s.Gender == Male || s.Gender == Female {
			return int(s.Gender)
		}
	case TaskAge:
		if s.AgeGroup >= 0 && int(s.AgeGroup) < NumAgeGroups {
			return int(s.AgeGroup)
		}
	}
	return -1
}

// Sample is one labelled face image.
type Sample struct {
	Path     string   // image file; for Adience, relative to the images root
	Gender   Gender   // UnknownGender if not labelled
	Age      int      // years, -1 if unknown (Adience gives only groups)
	AgeGroup AgeGroup // UnknownAge if not labelled
	Race     int      // UTKFace race 0..4, -1 if unknown
	Subject  string   // Adience user id, "" for UTKFace
	Fold     int      // Adience fold 0..4, -1 if none
}

// Skipped reports a dataset entry that was not loaded and why.
// It implements error so that it can be returned or wrapped as one.
type Skipped struct {
	Source string // file (or folder) the entry came from
	Line   int    // 1-based line number, 0 if not applicable (e.g. a file name)
	Reason string // what is wrong with the entry
}

// String formats the entry as "source:line: reason" (or "source: reason").
func (s Skipped) String() string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", s.Source, s.Line, s.Reason)
	}
	return fmt.Sprintf("%s: %s", s.Source, s.Reason)
}

// Error returns the same text as String.
func (s Skipped) Error() string { return s.String() }

// Filter returns the samples that have a label for the task, in order.
// It does not modify samples.
func Filter(samples []Sample, task Task) []Sample {
	var out []Sample
	for _, s := range samples {
		if task.Label(s) >= 0 {
			out = append(out, s)
		}
	}
	return out
}

// Spread keeps n samples evenly spaced through s (all of s if n ≥ len(s)).
// Dataset files are listed by name, which for UTKFace means by age, so
// quick runs must not simply take a prefix.
func Spread(s []Sample, n int) []Sample {
	if n <= 0 || n >= len(s) {
		return s
	}
	out := make([]Sample, n)
	for i := range out {
		out[i] = s[i*len(s)/n]
	}
	return out
}
