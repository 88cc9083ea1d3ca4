package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/pipeline"
)

func cmdEval(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	var d dataFlags
	d.register(fs, "", "task: gender, age, or both (default: the --model file's task; without --model, both: the built-in joint model)")
	modelPath := fs.String("model", "", "model file (default: the built-in model for --task; without --task, the joint gender+age model)")
	split := fs.String("split", "test", "split to evaluate: test or val")
	asJSON := fs.Bool("json", false, "print one JSON object")
	confusion := fs.String("confusion", "", "save the confusion matrix PNG here (default: <task>_confusion.png next to the model, or in the current directory)")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	calibrate := fs.String("calibrate", "", "fit a softmax temperature on the validation split, report the test ECE before/after, and save the calibrated model here")
	parse(fs, args)
	if *split != "test" && *split != "val" {
		return fmt.Errorf("eval: --split %q: use test or val", *split)
	}
	if d.task == "" {
		// Without --task: the model file's own task, or for the built-in
		// model the default one, the joint gender+age net.
		d.task = data.TaskGenderAge.String()
		if *modelPath != "" {
			m, err := model.Load(*modelPath)
			if err != nil {
				return err
			}
			d.task = m.Info.Task.String()
		}
	}
	dt, err := d.data()
	if err != nil {
		return err
	}
	o := pipeline.EvalOptions{Data: dt, Model: *modelPath, Split: *split, Confusion: *confusion, Calibrate: *calibrate, Log: os.Stderr}
	joint := dt.Task == data.TaskGenderAge
	if o.Confusion == "" && !joint {
		o.Confusion = filepath.Join(filepath.Dir(*modelPath), dt.Task.String()+"_confusion.png") // Dir("") is "."
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "backend:", backend.Describe(b))
	var res interface{ WriteText(io.Writer) }
	if joint {
		res, err = pipeline.EvalJoint(ctx, b, o)
	} else {
		res, err = pipeline.Eval(ctx, b, o)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	res.WriteText(os.Stdout)
	return nil
}
