package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/interop/onnx"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
)

func cmdExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	modelPath := fs.String("model", "", "model file to export (or --builtin gender|age|gender+age)")
	builtin := fs.String("builtin", "", "export a built-in model: gender+age (the default joint net), gender or age (the paper's nets)")
	out := fs.String("onnx", "", "output .onnx file (required)")
	batch := fs.Int("batch", 1, "batch size of the exported graph")
	parse(fs, args)
	if *out == "" {
		return fmt.Errorf("export: --onnx FILE is required")
	}
	if !onnx.Available {
		return fmt.Errorf("export: this binary cannot write ONNX; run ./setup.sh (with npm available, it installs ONNX Runtime and builds ./agegender with it)")
	}
	var m *model.Model
	var err error
	switch {
	case *builtin != "":
		m, err = models.Builtin(*builtin)
	case *modelPath != "":
		m, err = model.Load(*modelPath)
	default:
		return fmt.Errorf("export: pass --model FILE or --builtin gender+age|gender|age")
	}
	if err != nil {
		return err
	}
	ort, err := backend.Open("onnx")
	if err != nil {
		return err
	}
	goB, err := backend.Open("go")
	if err != nil {
		return err
	}
	diff, err := onnx.Export(ort, goB, m, *out, *batch)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%s %s, input [%d,%d,%d,3] RGB minus mean %v); checked on ONNX Runtime: max |Δp| %.2g vs the Go model\n",
		*out, m.Info.Config.Net, m.Info.Task, *batch, m.Info.Config.Input, m.Info.Config.Input, m.Info.Mean, diff)
	return nil
}
