package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/augment"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/progress"
	"github.com/gomlx/compute/dtypes/float16"
)

// streamChunk is how many images StreamFeatures decodes before running
// them through the backbone: their pixels (Size×Size×3 bytes each, 150 KB
// at 224) are the only images in memory at any time.
const streamChunk = 128

// A View is how [StreamFeatures] presents each image to the trunk: as it
// is (the zero View), mirrored, or distorted by an augmentation.
type View struct {
	// Mirror flips every image left to right (the features of the
	// mirrored face: a free augmentation).
	Mirror bool
	// Augment, if not nil, renders a distorted view of every image
	// instead: image i of the samples draws its distortions from
	// augment.Seeded(Seed, i, Number), so a view is reproducible and views
	// with other Numbers differ.
	Augment *augment.Spec
	Seed    int64
	Number  int
}

// String names the view for progress bars and cache files: "", "mirror"
// or "aug<Number>".
func (v View) String() string {
	switch {
	case v.Augment != nil:
		return "aug" + strconv.Itoa(v.Number)
	case v.Mirror:
		return "mirror"
	}
	return ""
}

// pixels renders image i of a split as the trunk's input bytes
// (cfg.Resize², packed RGB) in this view.
func (v View) pixels(img image.Image, i int, cfg prep.Spec) []uint8 {
	if v.Augment != nil {
		return v.Augment.Apply(img, cfg.Resize, augment.Seeded(v.Seed, i, v.Number))
	}
	p := prep.FromImage(img, cfg)
	if v.Mirror {
		mirrorRGB(p, cfg.Resize)
	}
	return p
}

// StreamFeatures runs e on every sample's image, decoding streamChunk
// images at a time with workers goroutines (0: all CPUs), so that peak
// memory is bounded by one chunk of pixels plus the features, whatever the
// number of samples. view says how each image is shown to the trunk.
// Images that cannot be decoded are skipped and absent from Features.Index.
// log, if not nil, receives its progress with the rate and ETA
// (internal/progress).
// Cancelling ctx stops between chunks with ctx's error.
func StreamFeatures(ctx context.Context, e *Extractor, samples []data.Sample, view View, workers int, log io.Writer) (Features, int, error) {
	return streamFeatures(ctx, e, samples, view, "", workers, log, Features{}, 0, nil)
}

// checkpointEvery is how often a long extraction saves its partial file
// (and it does when cancelled): an extraction killed outright loses at
// most this much work.
const checkpointEvery = 5 * time.Minute

// streamFeatures is [StreamFeatures] resumed: f holds the features of the
// first from samples, and checkpoint, if not nil, is given the features
// of the first done samples every checkpointEvery and when ctx is
// cancelled. A non-empty name (the split) is shown in the progress bar.
func streamFeatures(ctx context.Context, e *Extractor, samples []data.Sample, view View, name string, workers int, log io.Writer, f Features, from int, checkpoint func(f Features, done int) error) (Features, int, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	cfg := e.Backbone.Config()
	desc := e.Backbone.Name + " features"
	if name != "" {
		desc += ", " + name
	}
	if v := view.String(); v != "" {
		desc += " (" + v + ")"
	}
	bar := progress.New(log, len(samples), desc, "img")
	defer bar.Finish()
	bar.Start(from)
	skipped := 0
	pix := make([][]uint8, streamChunk)
	errs := make([]error, streamChunk)
	saved := time.Now()
	for start := from; start < len(samples); start += streamChunk {
		if checkpoint != nil && start > from && (ctx.Err() != nil || time.Since(saved) >= checkpointEvery) {
			if err := checkpoint(f, start); err != nil {
				return Features{}, 0, err
			}
			saved = time.Now()
		}
		if err := ctx.Err(); err != nil {
			if checkpoint != nil && start > 0 {
				return Features{}, 0, fmt.Errorf("%s interrupted at image %d of %d; those done are kept and the same command resumes there (%w)", desc, start, len(samples), err)
			}
			return Features{}, 0, err
		}
		n := min(streamChunk, len(samples)-start)
		var wg sync.WaitGroup
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for i := range next {
					img, _, err := imageio.DecodeFile(samples[start+i].Path, imageio.DefaultLimits)
					if err != nil {
						pix[i], errs[i] = nil, err
						continue
					}
					pix[i], errs[i] = view.pixels(img, start+i, cfg), nil
				}
			})
		}
		wg.Wait()
		var imgs [][]uint8
		for i := range n {
			if errs[i] != nil {
				skipped++
				continue
			}
			imgs = append(imgs, pix[i])
			f.Index = append(f.Index, start+i)
		}
		outs, err := e.Run(imgs)
		if err != nil {
			return Features{}, 0, err
		}
		if len(outs) > 0 {
			f.Rows = append(f.Rows, outs[0]...)
		}
		bar.Add(n)
	}
	return f, skipped, nil
}

// roundToFloat16 rounds every value to the nearest float16, as
// [WriteCache] stores it.
func roundToFloat16(rows [][]float32) {
	for _, row := range rows {
		for j, v := range row {
			row[j] = float16.FromFloat32(v).Float32()
		}
	}
}

// mirrorRGB flips packed RGB pixels of a side×side image left to right.
func mirrorRGB(p []uint8, side int) {
	for y := range side {
		row := p[y*side*3 : (y+1)*side*3]
		for l, r := 0, side-1; l < r; l, r = l+1, r-1 {
			row[3*l], row[3*r] = row[3*r], row[3*l]
			row[3*l+1], row[3*r+1] = row[3*r+1], row[3*l+1]
			row[3*l+2], row[3*r+2] = row[3*r+2], row[3*l+2]
		}
	}
}

// streamKey identifies what a streamed feature cache holds: the backbone
// (name, file, input size, pixel scaling), the output node, the
// preprocessing (the view: mirror, or the augmentation's ranges, seed and
// number), and every sample by base name and file size, in order; a change
// to any of them invalidates the cache.
func streamKey(bb Backbone, output string, view View, samples []data.Sample) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "v2|%s|%s|%s|%d|%g|%g|%t|%d\n", bb.Name, bb.File, output, bb.Size, bb.Scale, bb.Offset, view.Mirror, len(samples))
	if view.Augment != nil {
		fmt.Fprintf(h, "augment|%s|%d|%d\n", view.Augment, view.Seed, view.Number)
	}
	for _, s := range samples {
		var size int64
		if st, err := os.Stat(s.Path); err == nil {
			size = st.Size()
		}
		fmt.Fprintf(h, "%s|%d\x00", filepath.Base(s.Path), size)
	}
	return h.Sum64()
}

// CachedStreamFeatures returns the features of samples in view from the
// cache file dir/<backbone>-<name>[-<view>].<key>.f16 when it is there
// (key: a hash of the trunk, output, view and samples, see streamKey;
// the cacheVersions most recently used keys are kept), and
// otherwise streams them with [StreamFeatures] and writes the cache. dim
// is the output's length (e.g. 1024 for faceres's global pool). extracted
// is the number of images run through the trunk (0 when the cache held
// them). An extraction keeps its progress in dir/<…>.f16.partial, saved
// every checkpointEvery and when ctx is cancelled (Ctrl-C), and the next
// call for the same features resumes from it, saying so on progress.
func CachedStreamFeatures(ctx context.Context, e *Extractor, samples []data.Sample, view View, dir, name string, dim, workers int, progress io.Writer) (f Features, extracted int, err error) {
	output := e.outputs[0]
	key := streamKey(e.Backbone, output, view, samples)
	split := name
	if v := view.String(); v != "" {
		name += "-" + v
	}
	path, partial := "", ""
	var (
		from       Features
		start      int
		checkpoint func(Features, int) error
	)
	base := e.Backbone.Name + "-" + name
	if dir != "" {
		path = filepath.Join(dir, fmt.Sprintf("%s.%016x.f16", base, key))
		f, err := ReadCache(path, key, dim, len(samples))
		if err == nil {
			now := time.Now()
			_ = os.Chtimes(path, now, now) // kept by pruneCache as recently used
			return f, 0, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errStale) {
			return Features{}, 0, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Features{}, 0, fmt.Errorf("transfer: %w", err)
		}
		// An interrupted extraction of the same features resumes; a
		// partial file of other features, or a damaged one, is replaced.
		partial = path + ".partial"
		if pf, done, err := readPartial(partial, key, dim, len(samples)); err == nil {
			from, start = pf, done
			if progress != nil {
				fmt.Fprintf(progress, "%s: resuming at image %d of %d (%s)\n", e.Backbone.Name, done, len(samples), partial)
			}
		}
		checkpoint = func(f Features, done int) error { return writePartial(partial, key, dim, f, done) }
	}
	f, _, err = streamFeatures(ctx, e, samples, view, split, workers, progress, from, start, checkpoint)
	if err != nil {
		return Features{}, 0, err
	}
	// The rows are returned as the cache holds them (float16 values), so
	// a run that extracts them, one that resumes and one that reads the
	// cache train on the same numbers and give the same model.
	roundToFloat16(f.Rows[len(from.Rows):])
	if len(f.Rows) > 0 && len(f.Rows[0]) != dim {
		return Features{}, 0, fmt.Errorf("transfer: %s's %s has %d values per image, not %d", e.Backbone.Name, output, len(f.Rows[0]), dim)
	}
	if path != "" {
		if err := WriteCache(path, key, dim, f); err != nil {
			return Features{}, 0, err
		}
		_ = os.Remove(partial)
		pruneCache(dir, base, cacheVersions)
	}
	return f, len(f.Rows) - len(from.Rows), nil
}

// cacheVersions is how many feature cache files [CachedStreamFeatures]
// keeps for one trunk output, split and view: the features of other
// sample lists (another --limit, data set or fold), most recently used
// first, so that a quick run does not replace a long run's features.
const cacheVersions = 3

// pruneCache deletes the cache and partial files of base in dir (named
// base.<key>.f16[.partial]) beyond the keep most recently used, and
// base.f16, the name of earlier versions.
func pruneCache(dir, base string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		n := e.Name()
		if n == base+".f16" {
			_ = os.Remove(filepath.Join(dir, n))
			continue
		}
		rest, ok := strings.CutPrefix(n, base+".")
		if !ok {
			continue
		}
		rest = strings.TrimSuffix(rest, ".partial")
		if hex, ok := strings.CutSuffix(rest, ".f16"); !ok || len(hex) != 16 || strings.Trim(hex, "0123456789abcdef") != "" {
			continue
		}
		if info, err := e.Info(); err == nil {
			files = append(files, file{n, info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return b.mod.Compare(a.mod) })
	for _, f := range files[min(keep, len(files)):] {
		_ = os.Remove(filepath.Join(dir, f.name))
	}
}
