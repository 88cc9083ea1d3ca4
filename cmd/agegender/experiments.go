package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/experiments"
)

func cmdExperiments(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("experiments", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	kind := fs.String("dataset", "utkface", "utkface (fixed split) or adience (5-fold subject-exclusive protocol)")
	dir := fs.String("data", dataPath("utkface/images"), "UTKFace folder or Adience image root")
	folds := fs.String("folds", dataPath("adience/folds"), "Adience fold files")
	nets := fs.String("nets", "origin,origin-selu,origin-leaky,origin-bn,resnet,inception", "comma-separated networks")
	tasks := fs.String("tasks", "gender,age", "comma-separated tasks")
	input := fs.Int("input", 64, "input crop side")
	epochs := fs.Int("epochs", 10, "epochs per run")
	batch := fs.Int("batch", 50, "batch size")
	limit := fs.Int("limit", 0, "cap each split at this many images (0: all)")
	out := fs.String("out", "runs/experiments", "output directory (runs, table.md, results.json)")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	tl := fs.String("transfer", "mobilefacenet,mobilefacenet+ft", "transfer-learning rows (UTKFace only): backbones (mobilefacenet, faceres); +ft also fine-tunes the last block; empty: none")
	tlEpochs := fs.Int("transfer-epochs", 30, "head training epochs of the transfer rows")
	modelsDir := fs.String("models", modelsPath("tfjs"), "folder with the TF.js backbones")
	cache := fs.String("cache", "runs/transfer-cache", "transfer feature cache folder")
	parse(fs, args)
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "backend:", backend.Describe(b))
	var ts []data.Task
	for _, t := range strings.Split(*tasks, ",") {
		task, err := data.ParseTask(strings.TrimSpace(t))
		if err != nil {
			return err
		}
		ts = append(ts, task)
	}
	var transferRows []string
	for _, t := range strings.Split(*tl, ",") {
		if t = strings.TrimSpace(t); t != "" {
			transferRows = append(transferRows, t)
		}
	}
	if *cache != "" && len(transferRows) > 0 {
		if err := os.MkdirAll(*cache, 0o755); err != nil {
			return err
		}
	}
	rows, err := experiments.Run(ctx, b, experiments.Options{
		Nets: strings.Split(*nets, ","), Tasks: ts,
		Source: sources.Spec{Kind: *kind, Dir: *dir, Folds: *folds},
		Input:  *input, Epochs: *epochs, Batch: *batch, Limit: *limit, Seed: 1,
		OutDir: *out, Log: os.Stderr,
		Transfer: transferRows, ModelsDir: *modelsDir, CacheDir: *cache, TransferEpochs: *tlEpochs,
	})
	fmt.Print(experiments.Table(rows))
	// Keep the rows done so far even when the sweep stopped early.
	return errors.Join(err, experiments.Save(*out, rows))
}
