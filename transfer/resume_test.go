package transfer

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agegender/agegender/data"
)

// cancelAfter is a context whose Err reports cancellation from its
// (after+1)-th call on: StreamFeatures checks it between chunks.
type cancelAfter struct {
	context.Context
	calls atomic.Int32
	after int32
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.after {
		return context.Canceled
	}
	return nil
}

// TestInterruptedExtractionResumes cancels a feature extraction after its
// first chunk of images: it keeps what it did in a partial file, and the
// same call resumes there (saying so) and gives the features of an
// uninterrupted run. Most samples are missing files (skipped without
// running the trunk), so two chunks cost five faces.
func TestInterruptedExtractionResumes(t *testing.T) {
	all, ext := mobileFaceNetSetup(t)
	real := subset(all, 5, 1)
	samples := make([]data.Sample, streamChunk+10)
	for i := range samples {
		samples[i] = data.Sample{Path: filepath.Join(t.TempDir(), "missing.jpg")}
	}
	for k, i := range []int{0, 1, 2, streamChunk + 1, streamChunk + 7} {
		samples[i] = real[k]
	}
	want, _, err := StreamFeatures(context.Background(), ext, samples, View{}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The first chunk's check passes, the second's cancels.
	ctx := &cancelAfter{Context: context.Background(), after: 1}
	_, _, err = CachedStreamFeatures(ctx, ext, samples, View{}, dir, "x", MobileFaceNet.Dim, 2, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "resumes") {
		t.Fatalf("interrupted extraction: err = %v, want context.Canceled saying the command resumes", err)
	}
	partials, _ := filepath.Glob(filepath.Join(dir, "mobilefacenet-x.*.f16.partial"))
	if len(partials) != 1 {
		t.Fatalf("partial files after the interruption: %v, want one", partials)
	}
	partial := partials[0]
	var log bytes.Buffer
	got, extracted, err := CachedStreamFeatures(context.Background(), ext, samples, View{}, dir, "x", MobileFaceNet.Dim, 2, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "resuming at image 128 of 138") {
		t.Errorf("the resumed run's log does not say where it resumes:\n%s", log.String())
	}
	if extracted != 2 {
		t.Errorf("the resumed run extracted %d images, want the 2 after the first chunk", extracted)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the partial file is still there after the extraction finished (err %v)", err)
	}
	if len(got.Index) != len(want.Index) {
		t.Fatalf("resumed: %d rows (index %v), want %d (%v)", len(got.Index), got.Index, len(want.Index), want.Index)
	}
	for r := range want.Rows {
		if got.Index[r] != want.Index[r] {
			t.Fatalf("resumed row %d is sample %d, want %d", r, got.Index[r], want.Index[r])
		}
		for j, w := range want.Rows[r] {
			// The rows kept in the partial file went through float16.
			if d := math.Abs(float64(got.Rows[r][j] - w)); d > 1e-3*math.Max(1, math.Abs(float64(w))) {
				t.Fatalf("resumed row %d feature %d = %g, want %g", r, j, got.Rows[r][j], w)
			}
		}
	}
	// And the cache now holds the whole list, with exactly the values the
	// resumed run returned (so a run that reads the cache trains on the
	// same numbers); so does a run that extracts without interruption.
	again, n, err := CachedStreamFeatures(context.Background(), ext, samples, View{}, dir, "x", MobileFaceNet.Dim, 2, nil)
	if err != nil || n != 0 || len(again.Rows) != len(want.Rows) {
		t.Fatalf("after the resumed run: %d rows, %d extracted, err %v; want %d rows from the cache", len(again.Rows), n, err, len(want.Rows))
	}
	fresh, n, err := CachedStreamFeatures(context.Background(), ext, samples, View{}, t.TempDir(), "x", MobileFaceNet.Dim, 2, nil)
	if err != nil || n != len(want.Rows) {
		t.Fatalf("uninterrupted run: %d extracted, err %v", n, err)
	}
	for r := range again.Rows {
		if !slices.Equal(again.Rows[r], got.Rows[r]) || !slices.Equal(fresh.Rows[r], got.Rows[r]) {
			t.Fatalf("row %d differs between the resumed run, the cache and an uninterrupted run", r)
		}
	}
}

// TestPartialFileChecked: a partial file of other features, or a damaged
// one, is not resumed from.
func TestPartialFileChecked(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.f16.partial")
	f := Features{Index: []int{0, 2}, Rows: [][]float32{{1, 2}, {3, 4}}}
	if err := writePartial(p, 7, 2, f, 3); err != nil {
		t.Fatal(err)
	}
	got, done, err := readPartial(p, 7, 2, 10)
	if err != nil || done != 3 || len(got.Rows) != 2 || got.Rows[1][1] != 4 {
		t.Fatalf("readPartial = %v, %d, %v; want the 2 rows written, done 3", got, done, err)
	}
	if _, _, err := readPartial(p, 8, 2, 10); !errors.Is(err, errStale) {
		t.Errorf("partial file of another key: err = %v, want stale", err)
	}
	if _, err := ReadCache(p, 7, 2, 10); err == nil {
		t.Error("a partial file was read as a complete cache")
	}
	if _, _, err := readPartial(p, 7, 2, 2); err == nil {
		t.Error("a partial file covering more samples than the list was accepted")
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw[:len(raw)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readPartial(p, 7, 2, 10); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("truncated partial file: err = %v, want an error naming it", err)
	}
}

// TestCacheKeepsOtherSampleLists: features of another sample list (a
// quick run with --limit) get their own file instead of replacing a long
// run's; the three most recently used lists are kept, the rest and files
// of the old naming deleted.
func TestCacheKeepsOtherSampleLists(t *testing.T) {
	all, ext := mobileFaceNetSetup(t)
	dir := t.TempDir()
	old := filepath.Join(dir, "mobilefacenet-x.f16")
	if err := os.WriteFile(old, []byte("features of an earlier version"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func(n int) int {
		t.Helper()
		_, extracted, err := CachedStreamFeatures(ctx, ext, subset(all, n, 1), View{}, dir, "x", MobileFaceNet.Dim, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		return extracted
	}
	files := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "mobilefacenet-x*"))
		return m
	}
	run(4)
	run(2)
	if got := run(4); got != 0 {
		t.Errorf("the 4-face list was extracted again (%d) after a 2-face run; want it read from its own file", got)
	}
	if f := files(); len(f) != 2 {
		t.Errorf("cache files after two lists: %v, want two (the old-named file deleted)", f)
	}
	run(3)
	run(5)
	if f := files(); len(f) != cacheVersions {
		t.Errorf("cache files after five lists: %v, want the %d most recent", f, cacheVersions)
	}
	if got := run(2); got != 2 {
		t.Errorf("the least recently used list (2 faces) was read (%d extracted), want it pruned and extracted again", got)
	}
}
