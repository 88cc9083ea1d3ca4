package photos

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/progress"
)

// Options tunes Run.
type Options struct {
	// Workers is how many files are decoded and analysed at once (≥ 1).
	Workers int
	// Crop tells that the inputs are face crops: AnalyzeCrop, no
	// detection, one face whose box is the whole image.
	Crop bool
	// Limits bounds the photos decoded for Crop (the Analyzer applies its
	// own otherwise); pass the Analyzer's Options.Limits.
	Limits imageio.Limits
	// Log receives a line per skipped or failed file and, with Progress,
	// a progress bar.
	Log      io.Writer
	Progress bool
}

// Result is the analysis of one input file.
type Result struct {
	File    string
	Rel     string            // Input.Rel: where --annotate writes it, below its folder
	Res     *agegender.Result // nil when Err is set; Image kept only when the Printer annotates
	Err     error
	Skipped bool // Err says why a file found in a folder is no photo to analyse
}

// Counts sums up a Run.
type Counts struct {
	Images, Faces, Skipped, Failed int
	Elapsed                        time.Duration
}

// Run analyses files with a and writes each result through out, in input
// order. A skipped or failed file is named with its reason on opts.Log
// and counted; out's errors stop the run. When ctx ends Run returns
// ctx.Err().
func Run(ctx context.Context, a *agegender.Analyzer, files []Input, out *Printer, opts Options) (Counts, error) {
	var bar *progress.Bar
	if opts.Progress {
		bar = progress.New(opts.Log, len(files), "analysing", "file")
	}
	var c Counts
	start, done := time.Now(), 0
	for r := range analyseAll(ctx, a, files, opts, out.annotate != "") {
		done++
		bar.Add(1)
		var err error
		if r.Err != nil && ctx.Err() != nil && errors.Is(r.Err, ctx.Err()) {
			break // interrupted: this photo was not analysed, not failed
		}
		if r.Err != nil {
			bar.Clear()
			if r.Skipped {
				fmt.Fprintf(opts.Log, "agegender: skipped %v\n", r.Err)
				c.Skipped++
			} else {
				fmt.Fprintf(opts.Log, "agegender: %v\n", r.Err)
				c.Failed++
			}
			err = out.PrintError(r)
		} else {
			c.Images++
			c.Faces += len(r.Res.Faces)
			err = out.Print(r)
		}
		if err != nil {
			return c, err
		}
	}
	bar.Finish()
	c.Elapsed = time.Since(start)
	return c, ctx.Err()
}

// analyseAll analyses files on a pool of workers and delivers the results
// in input order. At most 2×workers images are decoded and waiting at any
// time, so memory stays bounded however many files there are.
func analyseAll(ctx context.Context, a *agegender.Analyzer, files []Input, opts Options, keepImage bool) <-chan Result {
	workers := max(1, opts.Workers)
	type job struct {
		file Input
		out  chan Result
	}
	jobs := make(chan job)
	order := make(chan chan Result, 2*workers)
	for range workers {
		go func() {
			for j := range jobs {
				j.out <- analyseFile(ctx, a, j.file, opts, keepImage)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, f := range files {
			c := make(chan Result, 1)
			select {
			case order <- c:
			case <-ctx.Done():
				return
			}
			jobs <- job{f, c}
		}
	}()
	results := make(chan Result)
	go func() {
		defer close(results)
		for c := range order {
			r := <-c
			select {
			case results <- r:
			case <-ctx.Done():
				// Drain so that workers finish and exit.
				for c := range order {
					<-c
				}
				return
			}
		}
	}()
	return results
}

// Stdin is the input name that reads the photo from standard input.
const Stdin = "-"

// stdinName names standard input in messages.
const stdinName = "standard input"

// analyseReader analyses the photo (or with opts.Crop the face crop) r
// holds.
func analyseReader(ctx context.Context, a *agegender.Analyzer, r io.Reader, opts Options) (*agegender.Result, error) {
	if !opts.Crop {
		return a.AnalyzeReader(ctx, r)
	}
	img, info, err := imageio.DecodeInfo(r, opts.Limits)
	if err != nil {
		return nil, err
	}
	return analyseCrop(ctx, a, img, info)
}

// analyseCrop analyses a face crop: one face, its box the whole image.
func analyseCrop(ctx context.Context, a *agegender.Analyzer, img image.Image, info imageio.Info) (*agegender.Result, error) {
	f, err := a.AnalyzeCrop(ctx, img)
	if err != nil {
		return nil, err
	}
	f.Box = image.Rect(0, 0, info.Width, info.Height)
	return &agegender.Result{Width: info.Width, Height: info.Height, Faces: []agegender.Face{f}, Image: img, Format: info.Format}, nil
}

// analyseFile analyses one file: a photo with AnalyzeReader, or with
// opts.Crop a face crop with AnalyzeCrop; Stdin reads standard input.
func analyseFile(ctx context.Context, a *agegender.Analyzer, in Input, opts Options, keepImage bool) Result {
	r := Result{File: in.Path, Rel: in.Rel}
	if in.Path == Stdin {
		r.Res, r.Err = analyseReader(ctx, a, os.Stdin, opts)
	} else if opts.Crop {
		img, info, err := imageio.DecodeFileInfo(in.Path, opts.Limits)
		if err == nil {
			r.Res, err = analyseCrop(ctx, a, img, info)
		}
		r.Err = err
	} else if f, err := os.Open(in.Path); err != nil {
		r.Err = err
	} else {
		r.Res, r.Err = a.AnalyzeReader(ctx, f)
		f.Close()
		if r.Err != nil {
			r.Err = fmt.Errorf("%s: %w", in.Path, r.Err)
		}
	}
	if r.Err != nil && in.Path == Stdin {
		r.Err = fmt.Errorf("%s: %w", stdinName, r.Err)
	}
	if r.Err != nil {
		r.Skipped = !in.Explicit && Skippable(r.Err)
		r.Res = nil
	} else if !keepImage {
		r.Res.Image = nil
	}
	return r
}
