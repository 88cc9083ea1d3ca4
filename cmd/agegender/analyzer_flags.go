package main

import (
	"flag"
	"fmt"
	"sync"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
)

// analyzerFlags are the flags that configure the Analyzer. predict and
// serve both register them, so that the same photo gets the same answer
// from either: same models, backend, crop mode, detector, score threshold
// and pixel limit.
type analyzerFlags struct {
	backend, model, genderModel, ageModel, detector string
	tenCrop, tiles                                  bool
	minFace                                         int
	minScore                                        float64
	maxPixels                                       int64
}

func (f *analyzerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "backend", "", "compute backend: go, onnx or xla (default $GOMLX_BACKEND, else ONNX Runtime if available, else go)")
	fs.StringVar(&f.model, "model", "", "joint gender + age `file` (agegender train --trunk NAME --task both; default: built-in)")
	fs.StringVar(&f.genderModel, "gender-model", "", "gender model `file` (default: built-in)")
	fs.StringVar(&f.ageModel, "age-model", "", "age model `file` (default: built-in)")
	fs.StringVar(&f.genderModel, "model-gender", "", "same as --gender-model")
	fs.StringVar(&f.ageModel, "model-age", "", "same as --age-model")
	fs.BoolVar(&f.tenCrop, "tencrop", false, "average 10 crops per face (4 corners + centre, mirrored; for the built-in model: the face and its mirror image) instead of the centre crop: a little more accurate, more work")
	fs.StringVar(&f.detector, "detector", face.Detectors[0], "face detector: blazeface (landmarks, turned faces) or pigo (the cascade; --min-face applies to it)")
	fs.BoolVar(&f.tiles, "tiles", false, "blazeface: also search overlapping 256-pixel tiles of big photos for small faces (finds about 8 points more faces on the photo benchmark for 2.7× the detection work; BENCHMARKS.md §7)")
	fs.IntVar(&f.minFace, "min-face", face.DefaultOptions().MinSize, "smallest face side searched for by pigo, in `pixels`")
	fs.Float64Var(&f.minScore, "min-score", 0, "smallest detection `score` (0–1) reported; 0 means the detector's calibrated default")
	fs.Int64Var(&f.maxPixels, "max-pixels", imageio.DefaultLimits.MaxPixels, "largest image width×height analysed; larger photos are downscaled to it (boxes stay in the photo's pixels), and refused only beyond 1 GiB of decoded pixels, about 350 megapixels of JPEG")
}

// minMaxPixels is the smallest --max-pixels: 64×64, about the smallest
// image with a face the networks can read.
const minMaxPixels = 64 * 64

// options returns the Analyzer's options; maxBytes bounds an encoded photo
// (0: the library's default). A flag given that the chosen detector does
// not use is an error, not silently ignored. fs holds the flags.
func (f *analyzerFlags) options(fs *flag.FlagSet, maxBytes int64) (agegender.Options, error) {
	if f.maxPixels < minMaxPixels {
		return agegender.Options{}, fmt.Errorf("--max-pixels %d: use at least %d (64×64); smaller images hold no face the networks can read", f.maxPixels, minMaxPixels)
	}
	var err error
	fs.Visit(func(fl *flag.Flag) {
		switch {
		case fl.Name == "min-face" && f.detector != "pigo":
			err = fmt.Errorf("--min-face applies to --detector pigo only; BlazeFace finds faces down to about 1/12 of the photo's longer side (smaller ones with --tiles)")
		case fl.Name == "tiles" && f.tiles && f.detector == "pigo":
			err = fmt.Errorf("--tiles applies to --detector blazeface only; pigo scans the whole photo down to --min-face")
		}
	})
	if err != nil {
		return agegender.Options{}, err
	}
	fopts := face.DefaultOptions()
	fopts.MinSize = f.minFace
	fopts.Tiles = f.tiles
	return agegender.Options{
		Backend: f.backend, Model: f.model, GenderModel: f.genderModel, AgeModel: f.ageModel,
		TenCrop: f.tenCrop, Detector: f.detector, MinScore: float32(f.minScore), Face: fopts,
		// One lock for every over-limit decode, the library's and
		// predict --crop's: one full-size photo in memory at a time.
		Limits: imageio.Limits{MaxPixels: f.maxPixels, MaxBytes: maxBytes, MaxDecodeBytes: imageio.DefaultDecodeBytes, Large: &sync.Mutex{}},
	}, nil
}
