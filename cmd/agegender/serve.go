package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/serve"
)

// cmdServe runs the HTTP service until SIGINT or SIGTERM (ctx), then shuts
// it down gracefully.
func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on; use :8080 to accept connections from other machines")
	token := fs.String("token", os.Getenv("AGEGENDER_TOKEN"), "require \"Authorization: Bearer `TOKEN`\" on /v1/ (default $AGEGENDER_TOKEN)")
	genderModel := fs.String("gender-model", "", "gender model `file` (default: built-in)")
	ageModel := fs.String("age-model", "", "age model `file` (default: built-in)")
	tencrop := fs.Bool("tencrop", false, "average 10 crops per face: a little more accurate, 10 times the work")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	minFace := fs.Int("min-face", face.DefaultOptions().MinSize, "smallest face side searched for, in `pixels`")
	maxBody := fs.Int64("max-body", serve.DefaultMaxBodyBytes>>20, "largest request body, in `MiB`")
	maxPixels := fs.Int64("max-pixels", 50_000_000, "largest image width×height")
	maxConc := fs.Int("max-concurrent", runtime.NumCPU(), "images analysed at once; more requests wait (see --queue-timeout), then get 503")
	logJSON := fs.Bool("log-json", false, "log JSON records instead of text")
	queue := fs.Duration("queue-timeout", serve.DefaultQueueTimeout, "how long a request waits for a free slot before it gets 503")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q; all settings are flags", fs.Args())
	}
	var log *slog.Logger
	if *logJSON {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	} else {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	fopts := face.DefaultOptions()
	fopts.MinSize = *minFace
	a, err := agegender.New(agegender.Options{
		Backend: *be, GenderModel: *genderModel, AgeModel: *ageModel, TenCrop: *tencrop, Face: fopts,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	h := serve.NewHandler(a, serve.Config{
		Token: *token, MaxBodyBytes: *maxBody << 20, MaxPixels: *maxPixels,
		MaxConcurrent: *maxConc, QueueTimeout: *queue, Logger: log,
	})
	err = serve.Run(ctx, serve.NewServer(*addr, h), nil, func(addr string) {
		log.Info("listening", "url", "http://"+addr+"/", "auth", *token != "")
	})
	if err == nil {
		log.Info("stopped")
	}
	return err
}
