// Package sources turns a dataset on disk into the train, validation and
// test lists one run needs, whichever dataset it is.
//
//   - UTKFace: the deterministic 80/10/10 split by file-name hash
//     (utkface.SplitOf).
//   - Adience: the subject-exclusive protocol — test on fold k, train on the
//     other four; a tenth of the training subjects (by a hash of the user
//     id) is held out for validation, so validation faces never share a
//     subject with training faces either.
package sources

import (
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/adience"
	"github.com/agegender/agegender/data/utkface"
)

// Spec names a dataset on disk.
type Spec struct {
	// Kind is "utkface" or "adience".
	Kind string
	// Dir is the UTKFace image folder, or the Adience image root (holding
	// aligned/<user>/...).
	Dir string
	// Folds is the Adience folder with fold_{0..4}_data.txt.
	Folds string
	// Fold is the Adience test fold, 0..4.
	Fold int
}

// Splits are one run's examples, already filtered to those labelled for
// the task.
type Splits struct {
	Train, Val, Test []data.Sample
	// Skipped lists malformed entries that were left out.
	Skipped []data.Skipped
	// Missing counts listed Adience faces whose image file is absent.
	Missing int
	// Name describes the split for reports, e.g. "utkface hash split".
	Name string
}

// Load reads the dataset and splits it for task.
func Load(spec Spec, task data.Task) (*Splits, error) {
	var s Splits
	switch spec.Kind {
	case "utkface":
		all, skipped, err := utkface.Load(spec.Dir)
		if err != nil {
			return nil, err
		}
		s.Skipped = skipped
		s.Train, s.Val, s.Test = utkface.SplitSamples(all)
		s.Name = "UTKFace 80/10/10 split by FNV-1a(file name) % 100"
	case "adience":
		if spec.Folds == "" {
			return nil, errors.New("sources: adience needs the folder of fold_{0..4}_data.txt files")
		}
		if spec.Fold < 0 || spec.Fold >= adience.NumFolds {
			return nil, fmt.Errorf("sources: adience fold %d is outside 0..%d", spec.Fold, adience.NumFolds-1)
		}
		folds, skipped, err := adience.LoadFolds(spec.Folds)
		if err != nil {
			return nil, err
		}
		s.Skipped = skipped
		train, test := adience.Protocol(folds, spec.Fold)
		for _, x := range train {
			if subjectHash(x.Subject)%10 == 0 {
				s.Val = append(s.Val, x)
			} else {
				s.Train = append(s.Train, x)
			}
		}
		s.Test = test
		var m1, m2, m3 int
		s.Train, m1 = adience.ExistingOnly(spec.Dir, s.Train)
		s.Val, m2 = adience.ExistingOnly(spec.Dir, s.Val)
		s.Test, m3 = adience.ExistingOnly(spec.Dir, s.Test)
		s.Missing = m1 + m2 + m3
		s.Name = fmt.Sprintf("Adience subject-exclusive protocol, test fold %d", spec.Fold)
	default:
		return nil, fmt.Errorf("sources: unknown dataset %q; use utkface or adience", spec.Kind)
	}
	s.Train = data.Filter(s.Train, task)
	s.Val = data.Filter(s.Val, task)
	s.Test = data.Filter(s.Test, task)
	if len(s.Train)+len(s.Val)+len(s.Test) == 0 {
		return nil, fmt.Errorf("sources: no %s-labelled images found in %s", task, spec.Dir)
	}
	return &s, nil
}

func subjectHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Paths returns the image file of every sample (Adience paths are relative
// to root; UTKFace paths are already complete).
func Paths(root string, s []data.Sample) []string {
	out := make([]string, len(s))
	for i, x := range s {
		if filepath.IsAbs(x.Path) || root == "" {
			out[i] = x.Path
		} else if x.Subject != "" {
			out[i] = adience.ImagePath(root, x)
		} else {
			out[i] = x.Path
		}
	}
	return out
}

// Labels returns task labels of samples.
func Labels(task data.Task, s []data.Sample) []int {
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = task.Label(x)
	}
	return out
}
