package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// parse parses a command's flags as flag.ExitOnError does (-h prints the
// command's help and exits 0), except that a bad flag or value prints one
// line saying what is wrong and how to see the flags, not the whole help,
// and exits 2.
func parse(fs *flag.FlagSet, args []string) {
	usage, out := fs.Usage, fs.Output()
	fs.Init(fs.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "agegender %s: %v\nRun \"agegender %s -h\" for its flags.\n", fs.Name(), err, fs.Name())
		os.Exit(2)
	}
}

// usages are the -h texts of the subcommands that set theirs with
// usageFor (predict has its own, predictUsage). Each starts with the
// synopsis and says what the command does; the flags follow.
var usages = map[string]string{
	"train": `usage: agegender train --out DIR [flags]

Trains a network on UTKFace (fixed 80/10/10 split) or Adience (--fold k of
the 5-fold protocol): one of the paper's nets (--net) for --task gender or
age, or, with --trunk, heads on a pretrained face network, by default one
net for both gender and age in years (--task both). It shows a progress
bar, evaluates the validation split after each epoch, and writes
checkpoint.agm, model.agm (the best epoch), curves.png and history.json to
--out; run the same command again after an interruption to resume from
the checkpoint.`,

	"eval": `usage: agegender eval [--model FILE] [flags]

Evaluates a model on the test or validation split; without --task, the
task is the model file's own (a file from train --task both is evaluated
as the joint net), and with neither --task nor --model it is the default
built-in model, the joint gender+age net; --task gender or age picks the
paper's built-in nets. Reports accuracy, 1-off age accuracy, centre crop and 10-crop,
per-class precision and recall, the confusion matrix as a PNG, and a
breakdown by gender × race × age. --calibrate fits a softmax temperature
on the validation split and reports the calibration error before and after.`,

	"experiments": `usage: agegender experiments [flags]

Trains and evaluates every network variant (--nets) for every task, plus
the transfer-learning rows, and writes one table (table.md, results.json)
to --out. On Adience every fold is run and each cell is mean ± std.`,

	"transfer": `usage: agegender transfer [flags]

Transfer learning from a pretrained face network (TF.js, in --models):
extracts the frozen backbone's features once into --cache, trains a
512-512-N head for gender and age, and reports test accuracy; --fine-tune
also trains MobileFaceNet's last block, --baseline adds faceres's own heads.`,

	"serve": `usage: agegender serve [flags]

Runs the HTTP service: POST /v1/predict (an image body, multipart, base64
or JSON), GET /healthz and /readyz, /metrics, and a web page at / where a
photo can be dropped. It listens at once, loads the models meanwhile, and
on SIGINT or SIGTERM drains: requests in flight finish, new ones get 503.`,

	"import": `usage: agegender import --prototxt FILE --caffemodel FILE --out FILE [flags]

Converts a Caffe model (the paper's age_net and gender_net, or VGG-Face)
into an agegender model file, with the Caffe mean image.`,

	"export": `usage: agegender export --onnx FILE (--model FILE | --builtin gender|age) [flags]

Writes a model as an ONNX graph (images [N,S,S,3] → probs [N,C]) and checks
it on ONNX Runtime against the Go model. Needs a binary with ONNX Runtime
compiled in (./setup.sh builds one when it installed ONNX Runtime).`,
}

// backendNote ends the usage text of every command with --backend: how
// the backend is chosen.
const backendNote = `
--backend go|onnx|xla picks the compute backend; without it, $GOMLX_BACKEND,
else ONNX Runtime when this binary has it compiled in and finds its library,
else pure Go.
`

// dataNote follows backendNote for the commands that read data sets.
const dataNote = `Data and pretrained-model flags default to folders under $AGEGENDER_DATA
(default ../shared/data; the pretrained networks are in models/tfjs beside
it: ../shared/models/tfjs).
`

// readsData lists the commands whose flags default to the data folder.
var readsData = map[string]bool{"train": true, "eval": true, "experiments": true, "transfer": true, "import": true}

// usageFor returns the -h function of fs: the command's usage text, then
// its flags, in place of Go's bare "Usage of NAME:".
func usageFor(fs *flag.FlagSet) func() {
	return func() {
		text, ok := usages[fs.Name()]
		if !ok {
			text = "usage: agegender " + fs.Name() + " [flags]"
		}
		text = strings.TrimRight(text, "\n") + "\n"
		if fs.Lookup("backend") != nil {
			text += backendNote
		}
		if readsData[fs.Name()] {
			text += dataNote
		}
		fmt.Fprint(fs.Output(), text+"\nflags:\n")
		fs.PrintDefaults()
	}
}
