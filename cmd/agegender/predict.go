package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/internal/photos"
)

const predictUsage = `usage: agegender predict [flags] FILE|FOLDER|GLOB...

Finds every face in the photos and prints its gender, age group and age
in years.
Folders are searched recursively and every file in them is tried: the
content, not the name, tells a JPEG, PNG, GIF, BMP or WebP image; quote
glob patterns ('photos/*.jpg', 'photos/**/*.jpg' for every depth) to
let agegender expand them; "-" reads
one photo from standard input (named "-", annotated as stdin). Transparent
images are analysed as shown on white; photos over --max-pixels are
downscaled (boxes stay in the photo's pixels; --annotate writes the
downscaled copy). Results come out in input
order. Files found in folders or by patterns that are not images we can
read (other files, HEIC, AVIF, empty files) are named on stderr with the
reason and counted as skipped. Every other failure, and any input named
on the command line that cannot be analysed, is reported on stderr, and
the command then exits with status 1.

With --json, --crop or --out, each photo gets one line, the HTTP service's
answer with the file's name: {"file": ..., "width": W, "height": H,
"faces": [{"face": 0, "box": [x, y, w, h], "gender": "f", ...}]} ("faces":
[] when none; with --crop one face whose box is the whole image). A file
that is skipped or fails gets a line {"file": ..., "error": ..., "skipped":
true|false} so that every input appears in the output.

Without --backend or $GOMLX_BACKEND, up to 4 photos are analysed on pure
Go, which starts faster, and more on the default backend (ONNX Runtime
when installed).

Batch work over many machines: --shard k/n takes the k-th of n shares of
the files (by FNV-1a 64 of each path as given or found, modulo n), and
--out FILE writes the JSON lines to FILE. Run the same command line (same
inputs, same working directory) with --shard 1/n ... n/n: every file is
analysed by exactly one of them.

flags:
`

// fewPhotos is the most photos predict analyses on pure Go when no
// backend is asked for: a process for one photo on ONNX Runtime takes
// about 0.5 s more CPU to start (loading it, and its slower compilation of
// the networks) and then saves about 65 ms a photo (BENCHMARKS.md §7), so
// pure Go is cheaper up to about 8 photos.
const fewPhotos = 4

func cmdPredict(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("predict", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), predictUsage)
		fs.PrintDefaults()
	}
	var af analyzerFlags
	af.register(fs)
	crop := fs.Bool("crop", false, "inputs are face crops (like UTKFace's): no face detection, one face per file")
	asJSON := fs.Bool("json", false, "print one JSON object per photo per line instead of a table")
	annotate := fs.String("annotate", "", "write copies of the photos with faces boxed and labelled into this `folder` (sub-folders of a folder input kept)")
	workers := fs.Int("workers", runtime.NumCPU(), "images decoded and analysed at once")
	quiet := fs.Bool("quiet", false, "no progress bar or summary on stderr")
	shard := fs.String("shard", "", "analyse only share `k/n` of the files (1 ≤ k ≤ n), chosen by a hash of each path; run k = 1..n on n machines")
	outFile := fs.String("out", "", "write JSON lines (as --json) to this `file` instead of stdout")
	parse(fs, args)
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("predict: no inputs: pass image files, folders or glob patterns")
	}
	for _, a := range fs.Args() {
		if _, err := os.Stat(a); err != nil && strings.HasPrefix(a, "-") && a != photos.Stdin {
			// Go's flag package stops at the first non-flag argument.
			return fmt.Errorf("predict: %s after the photos: flags go before them (agegender predict %s %s)", a, a, fs.Arg(0))
		}
	}
	if i := slices.Index(fs.Args(), photos.Stdin); i >= 0 && slices.Contains(fs.Args()[i+1:], photos.Stdin) {
		return errors.New("predict: \"-\" (standard input) given twice: it holds one photo")
	}
	if *workers < 1 {
		return fmt.Errorf("predict: --workers %d: use at least 1", *workers)
	}
	if *crop && *annotate != "" {
		return errors.New("predict: --annotate needs face detection; drop --crop")
	}
	opts, err := af.options(fs, 0)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	k, n, err := photos.ParseShard(*shard)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	failed := 0
	all, walked := photos.Expand(fs.Args(), func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "agegender: "+format+"\n", a...)
		failed++
	})
	files := all[:0:0]
	for _, f := range all {
		if photos.InShard(f.Path, k, n) {
			files = append(files, f)
		}
	}
	if n > 1 && !*quiet {
		fmt.Fprintf(os.Stderr, "shard %d/%d: %d of %d files\n", k, n, len(files), len(all))
	}
	w := io.Writer(os.Stdout)
	if *outFile != "" {
		*asJSON = true
		f, err := os.Create(*outFile)
		if err != nil {
			return fmt.Errorf("predict: --out: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		w = bw
	}
	if !backend.Chosen(opts.Backend) && len(files) <= fewPhotos {
		// Starting ONNX Runtime and compiling the networks for it costs
		// more CPU than it saves on a few photos (BENCHMARKS.md §7).
		opts.Backend = "go"
	}
	if *annotate != "" {
		if err := photos.CheckAnnotate(*annotate, fs.Args()); err != nil {
			return err
		}
		if err := os.MkdirAll(*annotate, 0o755); err != nil {
			return fmt.Errorf("predict: --annotate: %w", err)
		}
	}
	opts.CropsOnly = *crop
	a, err := agegender.New(opts)
	if err != nil {
		return err
	}
	defer a.Close()
	if !*quiet {
		fmt.Fprintln(os.Stderr, "backend:", a.Backend())
	}
	out := photos.NewPrinter(w, *asJSON || *crop, *annotate)
	c, err := photos.Run(ctx, a, files, out, photos.Options{
		Workers: *workers, Crop: *crop, Limits: opts.Limits, Log: os.Stderr, Progress: walked && !*quiet,
	})
	if err != nil {
		return err
	}
	if !*quiet {
		secs := c.Elapsed.Seconds()
		fmt.Fprintf(os.Stderr, "%s, %s in %.1f s (%.1f img/s); %d skipped, %d failed\n",
			photos.Count(c.Images, "image"), photos.Count(c.Faces, "face"), secs, float64(c.Images)/max(secs, 1e-9), c.Skipped, c.Failed+failed)
		if *annotate != "" && c.Images > 0 {
			fmt.Fprintf(os.Stderr, "annotated photos in %s\n", *annotate)
		}
	}
	if failed += c.Failed; failed > 0 {
		return fmt.Errorf("predict: %s could not be analysed (see the messages above)", photos.Count(failed, "input"))
	}
	return nil
}
