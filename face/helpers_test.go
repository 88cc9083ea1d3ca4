package face

import (
	"fmt"
	"image"
	_ "image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// utkDir holds the UTKFace "aligned & cropped" images. Tests that need them
// skip when it is absent.
const utkDir = "/work/shared/data/utkface/images"

var fmtf = fmt.Sprintf

// utkFiles returns n UTKFace files: every step-th of the sorted listing.
func utkFiles(t testing.TB, n, step int) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(utkDir, "*.jpg"))
	if err != nil || len(names) == 0 {
		t.Skipf("UTKFace images not found in %s", utkDir)
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
