// Command features extracts a pretrained backbone's features for the
// UTKFace train, validation and test splits into transfer's streamed
// feature cache (original and mirrored faces), so that heads can then be
// trained on them in minutes: stage 1 of the transfer recipe.
//
//	go run -tags onnx ./bench/features --backend onnx --out runs/features
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/transfer"
)

func main() {
	be := flag.String("backend", "", "compute backend (go, onnx, xla)")
	shared := flag.String("shared", "../shared", "the shared folder (data/utkface/images, models/tfjs)")
	out := flag.String("out", "runs/features", "cache folder")
	bbName := flag.String("backbone", "faceres", "backbone")
	output := flag.String("output", "global_pooling/Mean", "backbone node whose output is cached")
	dim := flag.Int("dim", 1024, "length of that output")
	mirrored := flag.Bool("mirror", true, "also extract the features of the mirrored faces")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *be, *shared, *out, *bbName, *output, *dim, *mirrored); err != nil {
		fmt.Fprintln(os.Stderr, "features:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, be, shared, out, bbName, output string, dim int, mirrored bool) error {
	bb, ok := transfer.Backbones[bbName]
	if !ok {
		return fmt.Errorf("unknown backbone %q", bbName)
	}
	b, err := backend.Open(be)
	if err != nil {
		return err
	}
	e, err := transfer.NewExtractor(b, filepath.Join(shared, "models", "tfjs"), bb, output)
	if err != nil {
		return err
	}
	samples, _, err := utkface.Load(filepath.Join(shared, "data", "utkface", "images"))
	if err != nil {
		return err
	}
	train, val, test := utkface.SplitSamples(samples)
	splits := []struct {
		name string
		list []data.Sample
	}{{"test", test}, {"val", val}, {"train", train}}
	for _, m := range []bool{false, true} {
		if m && !mirrored {
			continue
		}
		for _, sp := range splits {
			name := sp.name
			if m {
				name += "-mirror"
			}
			f, err := transfer.CachedStreamFeatures(ctx, e, sp.list, m, out, strings.ReplaceAll(output, "/", "_")+"-"+name, dim, 0, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s: %d faces\n", name, len(f.Rows))
		}
	}
	return nil
}
