package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/transfer"
)

// cmdTransfer trains a gender and an age head on the features of a frozen,
// pretrained face network and reports their UTKFace test accuracy, plus
// faceres's own zero-training predictions as a baseline.
func cmdTransfer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("transfer", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	images := fs.String("data", dataPath("utkface/images"), "UTKFace image folder")
	modelsDir := fs.String("models", modelsPath("tfjs"), "folder with mobilefacenet.json / faceres.json and their .bin")
	bb := fs.String("backbone", "mobilefacenet", "frozen feature extractor: mobilefacenet or faceres")
	cache := fs.String("cache", "runs/transfer-cache", "feature cache folder (features are extracted once)")
	max := fs.Int("max", 0, "use at most this many train and test images (0: all)")
	epochs := fs.Int("epochs", 30, "head training epochs")
	baseline := fs.Bool("baseline", true, "also report faceres's own gender/age heads (no training)")
	heads := fs.Bool("train-heads", true, "train and evaluate the heads (false: only the baseline)")
	fineTune := fs.Bool("fine-tune", false, "then also train the backbone's last block with the head, from its cached activations (stage 2 of agegender train --trunk --from)")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	parse(fs, args)
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "backend:", backend.Describe(b))
	backbone, ok := transfer.Backbones[*bb]
	if !ok {
		return fmt.Errorf("transfer: unknown backbone %q; use mobilefacenet or faceres", *bb)
	}
	if *cache != "" {
		if err := os.MkdirAll(*cache, 0o755); err != nil {
			return err
		}
	}
	for _, task := range []data.Task{data.TaskGender, data.TaskAge} {
		if !*heads {
			break
		}
		res, err := transfer.Run(transfer.Options{Backend: b, ModelsDir: *modelsDir, ImagesDir: *images, CacheDir: *cache,
			Backbone: backbone, Task: task, MaxTrain: *max, MaxTest: *max, Epochs: *epochs, Seed: 1, Log: os.Stderr,
			FineTune: *fineTune})
		if err != nil {
			return err
		}
		what := "head"
		if *fineTune {
			what = fmt.Sprintf("head + last block (%d weight tensors, largest change %.3g)", res.TunedWeights, res.BlockChange)
		}
		fmt.Printf("%s %s, %s: train %d, test %d: accuracy %.2f%%", backbone.Name, what, task, res.Train, res.Test, 100*res.TestAccuracy)
		if task == data.TaskAge {
			fmt.Printf(", 1-off %.2f%%", 100*res.TestOneOff)
		}
		fmt.Printf(" (extraction %v/image over %d images, head training %v)\n", res.ExtractPerImage, res.ExtractedImages, res.TrainingDuration)
	}
	if *baseline {
		r, err := transfer.Baseline(b, *modelsDir, *images, *max, 0)
		if err != nil {
			return err
		}
		fmt.Printf("faceres own heads (no training) on the test split: %+v\n", r)
	}
	return nil
}
