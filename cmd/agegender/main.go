// Command agegender trains, evaluates and runs networks that tell a face's
// gender and age group (Levi & Hassner 2015 and successors).
//
//	agegender train   --dataset utkface --data DIR --task gender --out runs/gender
//	agegender eval    --dataset utkface --data DIR --task gender [--model FILE] [--json]
//	agegender predict [--json] [--annotate DIR] photo.jpg folder/ 'glob*.png' ...
//	agegender serve   --addr 127.0.0.1:8080
//
// Run "agegender <command> -h" for the flags of each command.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/imageio"
)

const usage = `agegender — age and gender from faces

usage:
  agegender train    train a network (resumes from --out's checkpoint)
  agegender eval     evaluate a model: accuracy, 1-off, confusion matrix
  agegender predict  gender, age group and age of every face in photos, folders, globs
  agegender serve    HTTP service and web page (agegender serve --addr 127.0.0.1:8080)
  agegender import   convert a Caffe model (age_net, gender_net, VGG-Face)
  agegender export   write a model as ONNX (checked on ONNX Runtime)
  agegender transfer frozen pretrained face network + trained head (MobileFaceNet, faceres)
  agegender experiments  train and evaluate every variant; write a table
  agegender version  print the version, the backends compiled in and the JPEG decoder

Run "agegender <command> -h" (or "agegender help <command>") for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "help" && len(args) > 0 {
		// "agegender help predict" is "agegender predict -h".
		cmd, args = args[0], []string{"-h"}
	}
	switch cmd {
	case "train":
		err = cmdTrain(ctx, args)
	case "eval":
		err = cmdEval(ctx, args)
	case "predict":
		err = cmdPredict(ctx, args)
	case "serve":
		err = cmdServe(ctx, args)
	case "import":
		err = cmdImport(ctx, args)
	case "export":
		err = cmdExport(ctx, args)
	case "transfer":
		err = cmdTransfer(ctx, args)
	case "experiments":
		err = cmdExperiments(ctx, args)
	case "version", "--version", "-version":
		if len(args) > 0 {
			fmt.Fprintf(os.Stderr, "agegender version takes no arguments (got %q)\n", args[0])
			os.Exit(2)
		}
		printVersion()
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "agegender: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM: every command stops at a safe point (train
		// after saving its checkpoint, and says so; predict after the
		// photos already printed).
		if err == context.Canceled {
			if cmd == "train" {
				fmt.Fprintln(os.Stderr, "agegender: train interrupted; run the same command again to resume from its checkpoint")
			} else {
				fmt.Fprintf(os.Stderr, "agegender: %s interrupted\n", cmd)
			}
		} else {
			fmt.Fprintln(os.Stderr, errorLine(err))
		}
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is the message printed for a failed command: "agegender: "
// and the error, whose own "agegender: " prefix (errors of the library,
// package agegender) is not repeated.
func errorLine(err error) string {
	return "agegender: " + strings.TrimPrefix(err.Error(), "agegender: ")
}

// printVersion says what this binary is and what it was built with: the
// backends compiled in and the one it would start, the JPEG decoder.
func printVersion() {
	fmt.Printf("agegender 0.1.0 (%s, %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	name, note := backend.Default()
	if note != "" {
		note = " (" + note + ")"
	}
	fmt.Printf("backends compiled in: %s; default: %s%s\n", strings.Join(backend.Compiled(), ", "), name, note)
	fmt.Printf("JPEG: %s\n", imageio.JPEGDecoder)
}
