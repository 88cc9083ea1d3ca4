// Package predict runs trained models on face crops: one crop or a whole
// labelled set, with the centre crop or the paper's 10-crop over-sampling.
//
// Inputs are face crops in the training format (UTKFace-like: the face
// fills the frame). Finding faces in full photos is the job of the root
// package agegender, which calls this one.
package predict

import (
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
func PrepConfig(info model.Info) prep.Config {
	return prep.Config{Resize: info.Resize, Crop: info.Config.Input, Mean: info.Mean}
}

// Resized converts any face crop to the cached pixel format the model's
// crops are cut from.
func Resized(p *model.Predictor, img image.Image) []uint8 {
	return prep.FromImage(img, PrepConfig(p.Info))
}

// Probs returns class probabilities for each image in pix (each in the
// Resized format), cropping them as mode says.
func Probs(p *model.Predictor, pix [][]uint8, mode Mode) ([][]float32, error) {
	cfg := PrepConfig(p.Info)
	per := cfg.CropLen()
	crops := 1
	mirrorOnly := mode == TenCrop && cfg.Resize == cfg.Crop
	switch {
	case mirrorOnly:
		// The crop is the whole image, so the 4 corner crops equal the
		// centre one: the 10 crops average to the centre and its mirror.
		crops = 2
	case mode == TenCrop:
		crops = prep.NumTenCrops
	}
	buf := make([]float32, len(pix)*crops*per)
	for i, px := range pix {
		if len(px) != cfg.Resize*cfg.Resize*3 {
			return nil, fmt.Errorf("predict: image %d has %d bytes, want %d (use Resized)", i, len(px), cfg.Resize*cfg.Resize*3)
		}
		base := buf[i*crops*per:]
		if mirrorOnly {
			prep.CenterCropPixels(px, cfg, base[:per])
			prep.MirrorCropPixels(px, cfg, base[per:2*per])
		} else if mode == TenCrop {
			dst := make([][]float32, crops)
			for c := range dst {
				dst[c] = base[c*per : (c+1)*per]
			}
			prep.TenCropPixels(px, cfg, dst)
		} else {
			prep.CenterCropPixels(px, cfg, base[:per])
		}
	}
	all, err := p.Probs(buf, len(pix)*crops)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(pix))
	for i := range pix {
		out[i] = eval.AverageProbs(all[i*crops : (i+1)*crops])
	}
	return out, nil
}

// Set runs p over every image of a cache (with its labels) and returns the
// predictions for evaluation. Batches are prepared on all cores.
func Set(p *model.Predictor, cache *prep.Cache, labels []int, mode Mode) ([]eval.Prediction, error) {
	const chunk = 32
	n := cache.Len()
	out := make([]eval.Prediction, n)
	type job struct{ start int }
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < max(1, runtime.NumCPU()/2); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				end := min(n, j.start+chunk)
				pix := make([][]uint8, 0, end-j.start)
				for i := j.start; i < end; i++ {
					pix = append(pix, cache.Pixels(i))
				}
				probs, err := Probs(p, pix, mode)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				for k, pr := range probs {
					out[j.start+k] = eval.Prediction{Label: labels[j.start+k], Probs: pr}
				}
			}
		}()
	}
	for s := 0; s < n; s += chunk {
		jobs <- job{s}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return out, nil
}
