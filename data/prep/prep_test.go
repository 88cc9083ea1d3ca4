package prep

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/internal/datatest"
)

// synth returns a Resize×Resize packed RGB image whose value at (x, y, c)
// is (x + 3y + 50c) mod 256, so every crop is predictable.
func synth(r int) []uint8 {
	p := make([]uint8, r*r*3)
	for y := range r {
		for x := range r {
			for c := range 3 {
				p[(y*r+x)*3+c] = uint8((x + 3*y + 50*c) % 256)
			}
		}
	}
	return p
}

func synthValue(x, y, c int) float32 { return float32((x + 3*y + 50*c) % 256) }

func TestCenterCropExact(t *testing.T) {
	cfg := Spec{Resize: 10, Crop: 6, Mean: [3]float32{1, 2, 3}}
	dst := make([]float32, cfg.CropLen())
	CenterCropPixels(synth(10), cfg, dst)
	for y := range 6 {
		for x := range 6 {
			for c := range 3 {
				want := synthValue(x+2, y+2, c) - cfg.Mean[c]
				if got := dst[(y*6+x)*3+c]; got != want {
					t.Fatalf("(%d,%d,%d) = %v, want %v", x, y, c, got, want)
				}
			}
		}
	}
}

func TestTenCrop(t *testing.T) {
	cfg := Spec{Resize: 12, Crop: 8, Mean: [3]float32{10, 20, 30}}
	pix := synth(12)
	dst := make([][]float32, NumTenCrops)
	for k := range dst {
		dst[k] = make([]float32, cfg.CropLen())
	}
	TenCropPixels(pix, cfg, dst)
	for a := range dst {
		for b := a + 1; b < len(dst); b++ {
			if slices.Equal(dst[a], dst[b]) {
				t.Errorf("crops %d and %d are equal", a, b)
			}
		}
	}
	n := cfg.Crop
	for k := range 5 {
		for y := range n {
			for x := range n {
				for c := range 3 {
					if dst[k+5][(y*n+x)*3+c] != dst[k][(y*n+n-1-x)*3+c] {
						t.Fatalf("crop %d is not the mirror of crop %d at (%d,%d)", k+5, k, x, y)
					}
				}
			}
		}
	}
	// Corner positions: top-right starts at x = 4, bottom-left at y = 4.
	if dst[1][0] != synthValue(4, 0, 0)-10 || dst[2][0] != synthValue(0, 4, 0)-10 || dst[4][0] != synthValue(2, 2, 0)-10 {
		t.Error("corner crops at the wrong offsets")
	}
	center := make([]float32, cfg.CropLen())
	CenterCropPixels(pix, cfg, center)
	if !slices.Equal(center, dst[4]) {
		t.Error("crop 4 differs from CenterCrop")
	}
}

func TestRandomCropDeterministic(t *testing.T) {
	cfg := Spec{Resize: 24, Crop: 20, Mean: [3]float32{100, 110, 120}}
	pix := synth(24)
	run := func(seed uint64, aug Augment) [][]float32 {
		rng := rand.New(rand.NewPCG(seed, 1))
		var out [][]float32
		for range 5 {
			d := make([]float32, cfg.CropLen())
			RandomCropPixels(pix, cfg, aug, rng, d)
			out = append(out, d)
		}
		return out
	}
	for _, aug := range []Augment{{}, DefaultAugment()} {
		a, b, c := run(7, aug), run(7, aug), run(8, aug)
		for i := range a {
			if !slices.Equal(a[i], b[i]) {
				t.Fatalf("%+v: same seed, different crop %d", aug, i)
			}
		}
		same := true
		for i := range a {
			same = same && slices.Equal(a[i], c[i])
		}
		if same {
			t.Errorf("%+v: seeds 7 and 8 gave identical crops", aug)
		}
		for _, d := range a {
			for i, v := range d {
				if m := cfg.Mean[i%3]; v+m < -1e-3 || v+m > 255+1e-3 || math.IsNaN(float64(v)) {
					t.Fatalf("value %v out of 0..255 after adding the mean back", v+m)
				}
			}
		}
	}
}

func TestRandomCropNoAugmentIsACrop(t *testing.T) {
	cfg := Spec{Resize: 16, Crop: 16}
	pix := synth(16)
	d, want := make([]float32, cfg.CropLen()), make([]float32, cfg.CropLen())
	RandomCropPixels(pix, cfg, Augment{}, rand.New(rand.NewPCG(1, 2)), d)
	CenterCropPixels(pix, cfg, want)
	if !slices.Equal(d, want) {
		t.Error("Resize == Crop with no augmentation differs from the centre crop")
	}
}

func TestRotatedCrop(t *testing.T) {
	cfg := Spec{Resize: 9, Crop: 9, Mean: [3]float32{1, 1, 1}}
	pix := synth(9)
	// A 180° rotation about the centre maps (x, y) to (8-x, 8-y) exactly.
	d := make([]float32, cfg.CropLen())
	rotatedCrop(pix, cfg, 0, 0, false, math.Pi, 0, 1, d)
	for y := range 9 {
		for x := range 9 {
			for c := range 3 {
				want := synthValue(8-x, 8-y, c) - 1
				if got := d[(y*9+x)*3+c]; math.Abs(float64(got-want)) > 1e-3 {
					t.Fatalf("(%d,%d,%d) = %v, want %v", x, y, c, got, want)
				}
			}
		}
	}
	// A zero rotation with mirror equals the mirrored plain crop.
	plain := make([]float32, cfg.CropLen())
	cropAt(pix, cfg, 0, 0, true, plain)
	rotatedCrop(pix, cfg, 0, 0, true, 0, 0, 1, d)
	if !slices.Equal(d, plain) {
		t.Error("zero rotation differs from the plain mirrored crop")
	}
}

func TestBuildCacheSynthetic(t *testing.T) {
	dir := t.TempDir()
	const r = 8
	img := image.NewRGBA(image.Rect(0, 0, r, r))
	for y := range r {
		for x := range r {
			img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 10), 200, 255})
		}
	}
	good := filepath.Join(dir, "good.png")
	f, _ := os.Create(good)
	png.Encode(f, img)
	f.Close()
	bad := filepath.Join(dir, "bad.jpg")
	os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 not really a jpeg"), 0o644)
	cfg := Spec{Resize: r, Crop: 4, Mean: [3]float32{5, 5, 5}, Workers: 2}
	var calls []int
	c, errs := BuildCache(context.Background(), []string{bad, good, filepath.Join(dir, "missing.jpg")}, cfg, func(done, total int) {
		if total != 3 {
			t.Errorf("progress total %d", total)
		}
		calls = append(calls, done)
	})
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "bad.jpg") || !strings.Contains(errs[1].Error(), "missing.jpg") {
		t.Fatalf("errors = %v", errs)
	}
	if !slices.Equal(calls, []int{1, 2, 3}) {
		t.Errorf("progress calls %v", calls)
	}
	if c.Len() != 1 || c.Index(0) != 1 || len(c.Pixels(0)) != r*r*3 || c.Size() != r {
		t.Fatalf("cache len %d index %d", c.Len(), c.Index(0))
	}
	dst := make([]float32, cfg.CropLen())
	CenterCrop(c, 0, cfg, dst)
	// Crop offset 2: value at crop (1, 3) is source (3, 5).
	if got := dst[(3*4+1)*3:][:3]; got[0] != 30-5 || got[1] != 50-5 || got[2] != 200-5 {
		t.Errorf("centre crop pixel = %v", got)
	}
	m := MeanOf(c)
	if m[0] != 35 || m[1] != 35 || m[2] != 200 {
		t.Errorf("MeanOf = %v, want [35 35 200]", m)
	}
	if _, errs := BuildCache(context.Background(), nil, Spec{Resize: 4, Crop: 5}, nil); len(errs) != 1 {
		t.Error("invalid config accepted")
	}
}

// TestBuildCacheCancel: cancelling stops the decoding part-way (Ctrl-C
// while a data set decodes) with ctx's error and no cache.
func TestBuildCacheCancel(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	f, _ := os.Create(good)
	png.Encode(f, image.NewGray(image.Rect(0, 0, 16, 16)))
	f.Close()
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = good
	}
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	c, errs := BuildCache(ctx, paths, Spec{Resize: 8, Crop: 8, Workers: 2}, func(done, total int) {
		seen = done
		if done == 10 {
			cancel()
		}
	})
	if c != nil || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("cancelled BuildCache = %v, %v; want no cache and context.Canceled", c, errs)
	}
	if seen >= len(paths) {
		t.Errorf("decoded all %d images after the cancel", seen)
	}
}

func realPaths(tb testing.TB, n int) []string {
	dir := datatest.SharedDir(tb, "utkface/images")
	s, _, err := utkface.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	if len(s) < n {
		tb.Fatalf("only %d images", len(s))
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = s[i*len(s)/n].Path // spread over the ages
	}
	return paths
}

func TestBuildCacheReal(t *testing.T) {
	paths := realPaths(t, 20)
	cfg := Spec{Resize: 72, Crop: 64}
	c, errs := BuildCache(context.Background(), paths, cfg, nil)
	if len(errs) != 0 || c.Len() != 20 {
		t.Fatalf("%d cached, errors %v", c.Len(), errs)
	}
	cfg.Mean = MeanOf(c)
	t.Logf("mean of 20 images: %v", cfg.Mean)
	for k, m := range cfg.Mean {
		if m < 40 || m > 220 {
			t.Errorf("channel %d mean %v implausible for faces", k, m)
		}
	}
	// With the dataset mean subtracted, crops average near zero.
	var sum float64
	dst := make([]float32, cfg.CropLen())
	for i := range c.Len() {
		if len(c.Pixels(i)) != 72*72*3 || c.Index(i) != i {
			t.Fatalf("image %d: %d bytes, index %d", i, len(c.Pixels(i)), c.Index(i))
		}
		CenterCrop(c, i, cfg, dst)
		for _, v := range dst {
			sum += float64(v)
		}
	}
	if avg := sum / float64(c.Len()*len(dst)); math.Abs(avg) > 15 {
		t.Errorf("mean-subtracted centre crops average %v, want near 0", avg)
	}
	ten := make([][]float32, NumTenCrops)
	for k := range ten {
		ten[k] = make([]float32, cfg.CropLen())
	}
	TenCrop(c, 3, cfg, ten)
	for a := range ten {
		for b := a + 1; b < len(ten); b++ {
			if slices.Equal(ten[a], ten[b]) {
				t.Errorf("real image: crops %d and %d equal", a, b)
			}
		}
	}
	rng := rand.New(rand.NewPCG(42, 0))
	RandomCrop(c, 0, cfg, DefaultAugment(), rng, dst)
	// Paper size: a 200×200 UTKFace face is upscaled to 256.
	big := FromImage(image.NewRGBA(image.Rect(0, 0, 200, 200)), PaperSpec())
	if len(big) != 256*256*3 {
		t.Errorf("FromImage paper size: %d bytes", len(big))
	}
}

func BenchmarkBuildCache(b *testing.B) {
	paths := realPaths(b, 200)
	cfg := Spec{Resize: 72, Crop: 64}
	for b.Loop() {
		if _, errs := BuildCache(context.Background(), paths, cfg, nil); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

// TestChannelsBGR: a BGR spec writes every crop with red and blue swapped
// (the mean still given in RGB order), and its JSON name round-trips.
func TestChannelsBGR(t *testing.T) {
	rgb := Spec{Resize: 6, Crop: 4, Mean: [3]float32{1, 2, 3}}
	bgr := rgb
	bgr.Channels = BGR
	pix := make([]uint8, 6*6*3)
	for i := range pix {
		pix[i] = uint8(i)
	}
	check := func(what string, a, b []float32) {
		t.Helper()
		for i := 0; i < len(a); i += 3 {
			if a[i] != b[i+2] || a[i+1] != b[i+1] || a[i+2] != b[i] {
				t.Fatalf("%s: pixel %d RGB %v, BGR %v", what, i/3, a[i:i+3], b[i:i+3])
			}
		}
	}
	a, b := make([]float32, rgb.CropLen()), make([]float32, bgr.CropLen())
	CenterCropPixels(pix, rgb, a)
	CenterCropPixels(pix, bgr, b)
	check("centre", a, b)
	MirrorCropPixels(pix, rgb, a)
	MirrorCropPixels(pix, bgr, b)
	check("mirror", a, b)
	RandomCropPixels(pix, rgb, DefaultAugment(), rand.New(rand.NewPCG(1, 2)), a)
	RandomCropPixels(pix, bgr, DefaultAugment(), rand.New(rand.NewPCG(1, 2)), b)
	check("random", a, b)
	js, err := json.Marshal(bgr)
	if err != nil || !strings.Contains(string(js), `"channels":"bgr"`) {
		t.Fatalf("JSON %s, %v", js, err)
	}
	var back Spec
	if err := json.Unmarshal(js, &back); err != nil || back.Channels != BGR || back.Resize != 6 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"channels":"cmyk"}`), &back); err == nil {
		t.Error("channels cmyk accepted")
	}
	if ResizeFor(227) != 256 || ResizeFor(64) != 72 {
		t.Errorf("ResizeFor(227) = %d, ResizeFor(64) = %d", ResizeFor(227), ResizeFor(64))
	}
}
