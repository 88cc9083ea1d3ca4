package transfer

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agegender/agegender/data/augment"
)

// TestAugmentedViews extracts MobileFaceNet features of 6 real faces in
// augmented views: the same view twice gives the same features (seeded),
// another view number other ones, and each view has its own cache file
// and key, so no view is read back as another.
func TestAugmentedViews(t *testing.T) {
	all, ext := mobileFaceNetSetup(t)
	samples := subset(all, 6, 1)
	spec := augment.Default()
	v1 := View{Augment: &spec, Seed: 3, Number: 1}
	v2 := View{Augment: &spec, Seed: 3, Number: 2}
	dir := t.TempDir()
	ctx := context.Background()
	a, n, err := CachedStreamFeatures(ctx, ext, samples, v1, dir, "x", MobileFaceNet.Dim, 2, nil)
	if err != nil || n != 6 {
		t.Fatalf("first extraction: %d images, %v", n, err)
	}
	again, _, err := StreamFeatures(ctx, ext, samples, v1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Rows {
		if d := maxRelDiff(a.Rows[i], again.Rows[i]); d > 1e-3 { // float16 (the cache's values) against float32
			t.Fatalf("face %d: the same view differs by %g", i, d)
		}
	}
	other, n, err := CachedStreamFeatures(ctx, ext, samples, v2, dir, "x", MobileFaceNet.Dim, 2, nil)
	if err != nil || n != 6 {
		t.Fatalf("view 2: %d images extracted (want 6, not read from view 1's cache), %v", n, err)
	}
	if slices.Equal(a.Rows[0], other.Rows[0]) {
		t.Error("views 1 and 2 gave the same features")
	}
	plain, n, err := CachedStreamFeatures(ctx, ext, samples, View{}, dir, "x", MobileFaceNet.Dim, 2, nil)
	if err != nil || n != 6 {
		t.Fatalf("plain view: %d images extracted, %v", n, err)
	}
	if _, n, err := CachedStreamFeatures(ctx, ext, samples, v1, dir, "x", MobileFaceNet.Dim, 2, nil); err != nil || n != 0 {
		t.Errorf("view 1 again: %d images extracted, %v; want all from the cache", n, err)
	}
	for _, f := range []string{"mobilefacenet-x", "mobilefacenet-x-aug1", "mobilefacenet-x-aug2"} {
		if m, _ := filepath.Glob(filepath.Join(dir, f+".*.f16")); len(m) != 1 {
			t.Errorf("cache files of %s: %v, want one", f, m)
		}
	}
	if maxAbsDiff(plain.Rows[0], a.Rows[0]) == 0 {
		t.Error("the augmented view equals the plain one")
	}
	if streamKey(MobileFaceNet, "o", v1, samples) == streamKey(MobileFaceNet, "o", v2, samples) {
		t.Error("two views share a cache key")
	}
}

// maxRelDiff is the largest difference between a[i] and b[i] relative to
// max(1, |b[i]|).
func maxRelDiff(a, b []float32) float32 {
	var m float32
	for i := range a {
		m = max(m, (a[i]-b[i])/max(1, b[i], -b[i]), (b[i]-a[i])/max(1, b[i], -b[i]))
	}
	return m
}

func maxAbsDiff(a, b []float32) float32 {
	var m float32
	for i := range a {
		m = max(m, a[i]-b[i], b[i]-a[i])
	}
	return m
}
