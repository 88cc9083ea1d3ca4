package face

import (
	"fmt"
	"image"
	_ "image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
)

// utkDir returns the folder of UTKFace's "aligned & cropped" images; tests
// that need them skip when it is absent (internal/datatest).
func utkDir(t testing.TB) string { return datatest.SharedDir(t, "utkface/images") }

var fmtf = fmt.Sprintf

// utkFiles returns n UTKFace files: every step-th of the sorted listing.
func utkFiles(t testing.TB, n, step int) []string {
	t.Helper()
	dir := utkDir(t)
	names, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(names) == 0 {
		datatest.Missing(t, "UTKFace images not found in %s", dir)
	}
	sort.Strings(names)
	var out []string
	for i := 0; i < len(names) && len(out) < n; i += step {
		out = append(out, names[i])
	}
	return out
}

func loadImage(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return img
}

func newTestDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
