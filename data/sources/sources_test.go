package sources

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/adience"
	"github.com/agegender/agegender/internal/datatest"
)

func TestUTKFaceSplit(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	s, err := Load(Spec{Kind: "utkface", Dir: dir}, data.TaskAge)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Train) != 17108 || len(s.Val) != 2168 || len(s.Test) != 2068 || len(s.Skipped) != 4 {
		t.Errorf("split %d/%d/%d skipped %d, want 17108/2168/2068 and 4", len(s.Train), len(s.Val), len(s.Test), len(s.Skipped))
	}
}

// TestAdienceProtocol builds a tiny image tree for part of the real folds
// and checks the subject-exclusive train/val/test lists.
func TestAdienceProtocol(t *testing.T) {
	folds := datatest.SharedDir(t, "adience/folds")
	all, _, err := adience.LoadFolds(folds)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	made := 0
	for k := range all {
		for i, s := range all[k] {
			if i%40 != 0 {
				continue
			}
			p := adience.ImagePath(root, s)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("x"), 0o644)
			made++
		}
	}
	s, err := Load(Spec{Kind: "adience", Dir: root, Folds: folds, Fold: 3}, data.TaskGender)
	if err != nil {
		t.Fatal(err)
	}
	if s.Missing < 19487-made-10 || len(s.Test) == 0 || len(s.Train) == 0 || len(s.Val) == 0 {
		t.Fatalf("train %d val %d test %d missing %d (made %d files)", len(s.Train), len(s.Val), len(s.Test), s.Missing, made)
	}
	subjects := map[string]string{}
	for name, part := range map[string][]data.Sample{"train": s.Train, "val": s.Val, "test": s.Test} {
		for _, x := range part {
			if name == "test" && x.Fold != 3 || name != "test" && x.Fold == 3 {
				t.Fatalf("%s holds a sample of fold %d", name, x.Fold)
			}
			if prev, ok := subjects[x.Subject]; ok && prev != name {
				t.Fatalf("subject %s is in both %s and %s", x.Subject, prev, name)
			}
			subjects[x.Subject] = name
			if x.Gender < 0 {
				t.Fatalf("unlabelled sample kept for the gender task: %+v", x)
			}
		}
	}
	if _, err := Load(Spec{Kind: "adience", Dir: root, Folds: folds, Fold: 5}, data.TaskAge); err == nil {
		t.Error("fold 5 accepted")
	}
	if _, err := Load(Spec{Kind: "imdb"}, data.TaskAge); err == nil {
		t.Error("unknown dataset accepted")
	}
}
