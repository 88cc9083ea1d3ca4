package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/predict"
)

// cropResult is one line of `predict --crop` output: a stable contract
// that other tools read.
type cropResult struct {
	File       string             `json:"file"`
	Gender     string             `json:"gender"`
	GenderProb float32            `json:"gender_prob"`
	AgeGroup   string             `json:"age_group"`
	AgeProbs   map[string]float32 `json:"age_probs"`
	Error      string             `json:"error,omitempty"`
}

func cmdPredict(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("predict", flag.ExitOnError)
	crop := fs.Bool("crop", false, "inputs are face crops (like UTKFace's); no face detection")
	genderModel := fs.String("gender-model", "", "gender model file (default: built-in)")
	ageModel := fs.String("age-model", "", "age model file (default: built-in)")
	tencrop := fs.Bool("tencrop", true, "average 10 crops (4 corners + centre, mirrored) instead of the centre crop")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	fs.Parse(args)
	if !*crop {
		return fmt.Errorf("predict: only --crop is supported: pass face crops")
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("predict: no input files")
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, backend.Describe(b))
	gp, err := loadPredictor(b, *genderModel, "gender")
	if err != nil {
		return err
	}
	ap, err := loadPredictor(b, *ageModel, "age")
	if err != nil {
		return err
	}
	mode := predict.Center
	if *tencrop {
		mode = predict.TenCrop
	}
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for _, f := range fs.Args() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		img, _, err := imageio.DecodeFile(f, imageio.DefaultLimits)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agegender:", err)
			failed++
			continue
		}
		g, err := predict.Probs(gp, [][]uint8{predict.Resized(gp, img)}, mode)
		if err != nil {
			return err
		}
		a, err := predict.Probs(ap, [][]uint8{predict.Resized(ap, img)}, mode)
		if err != nil {
			return err
		}
		r := cropResult{File: f, AgeProbs: map[string]float32{}}
		gi := argmax(g[0])
		r.Gender, r.GenderProb = gp.Info.ClassNames[gi], g[0][gi]
		r.AgeGroup = ap.Info.ClassNames[argmax(a[0])]
		for i, name := range ap.Info.ClassNames {
			r.AgeProbs[name] = a[0][i]
		}
		enc.Encode(r)
	}
	if failed > 0 {
		return fmt.Errorf("predict: %d of %d inputs could not be read", failed, fs.NArg())
	}
	return nil
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
