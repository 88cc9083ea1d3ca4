package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/interop/caffeimport"
)

// cmdImport converts a Caffe model (the paper's age_net/gender_net, or
// VGG-Face) into an agegender model file.
func cmdImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	prototxt := fs.String("prototxt", "", "Caffe deploy.prototxt (required)")
	weights := fs.String("caffemodel", "", "Caffe .caffemodel weights (required)")
	meanFile := fs.String("mean", dataPath("adience/caffe/mean.binaryproto"), "Caffe mean.binaryproto (BGR); empty for VGG-Face's mean")
	task := fs.String("task", "gender", "gender or age")
	out := fs.String("out", "", "output model file (required)")
	half := fs.Bool("half", true, "store the weights as float16")
	parse(fs, args)
	if *prototxt == "" || *weights == "" || *out == "" {
		return fmt.Errorf("import: --prototxt, --caffemodel and --out are required")
	}
	def, err := caffe.ParseNetFile(*prototxt)
	if err != nil {
		return err
	}
	w, err := caffe.ReadNetParameterFile(*weights)
	if err != nil {
		return err
	}
	mean := caffe.VGGFaceMeanRGB
	if *meanFile != "" {
		blob, err := caffe.ReadBlob(*meanFile)
		if err != nil {
			return err
		}
		if mean, err = caffe.MeanRGB(blob); err != nil {
			return err
		}
	}
	m, err := caffeimport.ToModel(def, w, *task, mean)
	if err != nil {
		return err
	}
	if err := m.Save(*out, *half); err != nil {
		return err
	}
	fmt.Printf("imported %s (%s, %d parameters, input %d) into %s\n", *weights, m.Info.Config.Net, m.NumParams(), m.Info.Config.Input, *out)
	return nil
}
