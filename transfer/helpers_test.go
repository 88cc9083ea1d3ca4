package transfer

import (
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/gomlx/compute"
)

// sharedDir returns ../shared, skipping the test when the pretrained
// models or the UTKFace images are absent.
func sharedDir(t *testing.T) string {
	t.Helper()
	datatest.Shared(t, "models/tfjs")
	datatest.SharedDir(t, "utkface/images")
	return filepath.Dir(datatest.Shared(t, "models"))
}

// headsSetup returns the TF.js models folder, 24 training and 8
// validation UTKFace faces spread over their splits, and the default
// backend: the inputs of the TrainHeads tests.
func headsSetup(t *testing.T) (models string, tr, val []data.Sample, b compute.Backend) {
	t.Helper()
	images, models := ResolveImages(sharedDir(t))
	samples, _, err := utkface.Load(images)
	if err != nil {
		t.Fatal(err)
	}
	tr, val, _ = utkface.SplitSamples(samples)
	tr, val = data.Spread(tr, 24), data.Spread(val, 8)
	if b, err = backend.Open(""); err != nil {
		t.Fatal(err)
	}
	return models, tr, val, b
}

// mobileFaceNetSetup returns every UTKFace sample and a MobileFaceNet
// extractor on the default backend: the inputs of the feature-stream
// tests.
func mobileFaceNetSetup(t *testing.T) ([]data.Sample, *Extractor) {
	t.Helper()
	images, models := ResolveImages(sharedDir(t))
	all, _, err := utkface.Load(images)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	ext, err := NewExtractor(b, models, MobileFaceNet)
	if err != nil {
		t.Fatal(err)
	}
	return all, ext
}
