// Package predict runs trained models on face crops: one crop or a whole
// labelled set, with the centre crop or the paper's 10-crop over-sampling.
//
// Inputs are face crops in the training format (UTKFace-like: the face
// fills the frame). Finding faces in full photos is the job of the root
// package agegender, which calls this one.
//
// # Batching
//
// [Runner] is the project's one batching layer: it gathers the images of
// concurrent callers into shared batches for a model. Each caller prepares
// its own crops (resize, crop, mean) in its own goroutine, so that
// preparation runs on all cores while the network runs batch after batch.
// The Analyzer of package agegender (and so the CLI's predict and the HTTP
// service) and [Set] (evaluation) are built on it. Below it,
// model.Predictor pads each batch to one of the few batch sizes it has
// compiled, which is a detail of running a fixed-shape graph, not a second
// batching layer.
package predict

import (
	"context"
	"fmt"
	"image"
	"runtime"
	"sync"

	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/model"
)

// Mode is how an image is cropped for the network.
type Mode int

const (
	// Center feeds the centre crop only.
	Center Mode = iota
	// TenCrop averages the softmax of 10 crops: 4 corners and the centre,
	// each also mirrored (Levi & Hassner's over-sampling).
	TenCrop
)

func (m Mode) String() string {
	if m == TenCrop {
		return "10-crop"
	}
	return "center"
}

// PrepConfig is the preprocessing a model expects.
func PrepConfig(info model.Info) prep.Spec {
	s := info.Spec // resize, mean, channel order and framing as trained
	s.Crop = info.Config.Input
	return s
}

// Resized converts any face crop to the cached pixel format the model's
// crops are cut from.
func Resized(p *model.Predictor, img image.Image) []uint8 {
	return prep.FromImage(img, PrepConfig(p.Info))
}

// cropsPer is how many network inputs one image gives in mode: 1, or 2
// when the model's crop is its whole resized image (the 4 corner crops
// then equal the centre one, so 10 crops average to the centre and its
// mirror), else 10.
func cropsPer(cfg prep.Spec, mode Mode) int {
	switch {
	case mode != TenCrop:
		return 1
	case cfg.Resize == cfg.Crop:
		return 2
	}
	return prep.NumTenCrops
}

// prepare cuts the network inputs of every image in pix (each in the
// Resized format) as mode says, packed NHWC.
func prepare(cfg prep.Spec, pix [][]uint8, mode Mode) ([]float32, error) {
	per, crops := cfg.CropLen(), cropsPer(cfg, mode)
	buf := make([]float32, len(pix)*crops*per)
	for i, px := range pix {
		if len(px) != cfg.Resize*cfg.Resize*3 {
			return nil, fmt.Errorf("predict: image %d has %d bytes, want %d (use Resized)", i, len(px), cfg.Resize*cfg.Resize*3)
		}
		base := buf[i*crops*per:]
		switch crops {
		case 1:
			prep.CenterCropPixels(px, cfg, base[:per])
		case 2:
			prep.CenterCropPixels(px, cfg, base[:per])
			prep.MirrorCropPixels(px, cfg, base[per:2*per])
		default:
			dst := make([][]float32, crops)
			for c := range dst {
				dst[c] = base[c*per : (c+1)*per]
			}
			prep.TenCropPixels(px, cfg, dst)
		}
	}
	return buf, nil
}

// Probs returns class probabilities for each image in pix (each in the
// Resized format), cropping them as mode says, in one call to p: no
// batching with other callers (see Runner for that).
func Probs(p *model.Predictor, pix [][]uint8, mode Mode) ([][]float32, error) {
	cfg := PrepConfig(p.Info)
	buf, err := prepare(cfg, pix, mode)
	if err != nil {
		return nil, err
	}
	crops := cropsPer(cfg, mode)
	all, err := p.Probs(buf, len(pix)*crops)
	if err != nil {
		return nil, err
	}
	return average(all, crops), nil
}

// average averages each run of crops probability vectors into one.
func average(all [][]float32, crops int) [][]float32 {
	out := make([][]float32, len(all)/crops)
	for i := range out {
		out[i] = eval.AverageProbs(all[i*crops : (i+1)*crops])
	}
	return out
}

// Set runs p over every image of a cache (with its labels) and returns the
// predictions for evaluation. Batches are prepared on all cores and run
// through a Runner.
func Set(p *model.Predictor, cache *prep.Cache, labels []int, mode Mode) ([]eval.Prediction, error) {
	const chunk = 32
	r := NewRunner(p, mode, chunk)
	defer r.Close()
	n := cache.Len()
	out := make([]eval.Prediction, n)
	starts := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(1, runtime.NumCPU()/2) {
		wg.Go(func() {
			for start := range starts {
				end := min(n, start+chunk)
				pix := make([][]uint8, 0, end-start)
				for i := start; i < end; i++ {
					pix = append(pix, cache.Pixels(i))
				}
				probs, err := r.Probs(context.Background(), pix)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				for k, pr := range probs {
					out[start+k] = eval.Prediction{Label: labels[start+k], Probs: pr}
				}
			}
		})
	}
	for s := 0; s < n; s += chunk {
		starts <- s
	}
	close(starts)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return out, nil
}
