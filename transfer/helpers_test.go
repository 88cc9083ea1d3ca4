package transfer

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir returns ../shared next to the module root (found by walking up
// from the test directory to go.mod), skipping the test when the models or
// the UTKFace images are absent.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found above the test directory")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	for _, p := range []string{"models/tfjs/mobilefacenet.json", "models/tfjs/faceres.json", "data/utkface/images"} {
		if _, err := os.Stat(filepath.Join(shared, p)); err != nil {
			t.Skipf("%s not found; the pretrained models and UTKFace live in ../shared", filepath.Join(shared, p))
		}
	}
	return shared
}
