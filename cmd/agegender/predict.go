package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/imageio"
	"github.com/schollz/progressbar/v3"
)

// fileLine is one line of predict's JSON output (--json, --crop, --out):
// the file's name and the library's agegender.Result, so that a face has
// the same JSON form as in the library and the HTTP service (see
// agegender.Face), in the photo's pixels, and a photo without faces has
// "faces": [].
type fileLine struct {
	File string `json:"file"`
	*agegender.Result
}

const predictUsage = `usage: agegender predict [flags] FILE|FOLDER|GLOB...

Finds every face in the photos and prints its gender and age group.
Folders are searched recursively and every file in them is tried: the
content, not the name, tells a JPEG, PNG, GIF, BMP or WebP image; quote
glob patterns ('photos/*.jpg') to let agegender expand them. Transparent
images are analysed as shown on white; photos over --max-pixels are
downscaled (boxes stay in the photo's pixels). Results come out in input
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

Batch work over many machines: --shard k/n takes the k-th of n shares of
the files (by FNV-1a 64 of each path as given or found, modulo n), and
--out FILE writes the JSON lines to FILE. Run the same command line (same
inputs, same working directory) with --shard 1/n ... n/n: every file is
analysed by exactly one of them.

flags:
`

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
	annotate := fs.String("annotate", "", "write copies of the photos with faces boxed and labelled into this `folder`")
	workers := fs.Int("workers", runtime.NumCPU(), "images decoded and analysed at once")
	quiet := fs.Bool("quiet", false, "no progress bar or summary on stderr")
	shard := fs.String("shard", "", "analyse only share `k/n` of the files (1 ≤ k ≤ n), chosen by a hash of each path; run k = 1..n on n machines")
	outFile := fs.String("out", "", "write JSON lines (as --json) to this `file` instead of stdout")
	fs.Parse(args)
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("predict: no inputs: pass image files, folders or glob patterns")
	}
	if *workers < 1 {
		return fmt.Errorf("predict: --workers %d: use at least 1", *workers)
	}
	if *crop && *annotate != "" {
		return errors.New("predict: --annotate needs face detection; drop --crop")
	}
	opts, err := af.options(0)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	k, n, err := parseShard(*shard)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	failed := 0
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "agegender: "+format+"\n", a...)
		failed++
	}
	all, walked := expandInputs(fs.Args(), fail)
	files := all[:0:0]
	for _, f := range all {
		if inShard(f.path, k, n) {
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
	if *annotate != "" {
		if err := os.MkdirAll(*annotate, 0o755); err != nil {
			return fmt.Errorf("predict: --annotate: %w", err)
		}
	}
	be2, err := backend.Open(af.backend)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintln(os.Stderr, backend.Describe(be2))
	}
	be2.Finalize()
	a, err := agegender.New(opts)
	if err != nil {
		return err
	}
	defer a.Close()

	var bar *progressbar.ProgressBar
	if walked && !*quiet {
		bar = progressbar.NewOptions(len(files), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("analysing"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	out := &printer{w: w, json: *asJSON, crop: *crop, annotate: *annotate, used: map[string]bool{}}
	if !*asJSON && !*crop {
		out.header()
	}
	start := time.Now()
	images, faces, skipped, done := 0, 0, 0, 0
	results := analyseAll(ctx, a, files, opts.Limits, *workers, *crop, *annotate != "")
	for r := range results {
		done++
		if bar != nil {
			bar.Describe("analysing " + rate(done, time.Since(start)))
			bar.Add(1)
		}
		if r.err != nil {
			if bar != nil {
				bar.Clear()
			}
			if r.skipped {
				fmt.Fprintf(os.Stderr, "agegender: skipped %v\n", r.err)
				skipped++
			} else {
				fmt.Fprintf(os.Stderr, "agegender: %v\n", r.err)
				failed++
			}
			if err := out.printError(r); err != nil {
				return err
			}
			continue
		}
		images++
		faces += len(r.res.Faces)
		if err := out.print(r); err != nil {
			return err
		}
	}
	if bar != nil {
		bar.Finish()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !*quiet {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "%s, %s in %.1f s (%.1f img/s); %d skipped, %d failed\n",
			count(images, "image"), count(faces, "face"), secs, float64(images)/max(secs, 1e-9), skipped, failed)
	}
	if failed > 0 {
		return fmt.Errorf("predict: %s could not be analysed (see the messages above)", count(failed, "input"))
	}
	return nil
}

// result is the analysis of one input file.
type result struct {
	file    string
	res     *agegender.Result // Image kept only for --annotate
	err     error
	skipped bool // err says why a found file is no photo to analyse
}

// analyseAll analyses files on a pool of workers and delivers the results
// in input order. At most 2×workers images are decoded and waiting at any
// time, so memory stays bounded however many files there are.
func analyseAll(ctx context.Context, a *agegender.Analyzer, files []input, lim imageio.Limits, workers int, crop, keepImage bool) <-chan result {
	type job struct {
		file input
		out  chan result
	}
	jobs := make(chan job)
	order := make(chan chan result, 2*workers)
	for range workers {
		go func() {
			for j := range jobs {
				j.out <- analyseFile(ctx, a, j.file, lim, crop, keepImage)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, f := range files {
			c := make(chan result, 1)
			select {
			case order <- c:
			case <-ctx.Done():
				return
			}
			jobs <- job{f, c}
		}
	}()
	results := make(chan result)
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

// analyseFile analyses one file: a photo with AnalyzeReader, or with crop
// a face crop with AnalyzeCrop (decoded within the same limits).
func analyseFile(ctx context.Context, a *agegender.Analyzer, in input, lim imageio.Limits, crop, keepImage bool) result {
	r := result{file: in.path}
	if crop {
		img, info, err := imageio.DecodeFileInfo(in.path, lim)
		if err == nil {
			var f agegender.Face
			f, err = a.AnalyzeCrop(ctx, img)
			f.Box = image.Rect(0, 0, info.Width, info.Height)
			r.res = &agegender.Result{Width: info.Width, Height: info.Height, Faces: []agegender.Face{f}, Image: img, Format: info.Format}
		}
		r.err = err
	} else if f, err := os.Open(in.path); err != nil {
		r.err = err
	} else {
		r.res, r.err = a.AnalyzeReader(ctx, f)
		f.Close()
		if r.err != nil {
			r.err = fmt.Errorf("%s: %w", in.path, r.err)
		}
	}
	if r.err != nil {
		r.skipped = !in.explicit && skippable(r.err)
		r.res = nil
	} else if !keepImage {
		r.res.Image = nil
	}
	return r
}

// printer writes results as a table or JSON lines, and annotated copies.
type printer struct {
	w        io.Writer
	json     bool
	crop     bool
	annotate string
	used     map[string]bool // annotated file names already written
}

const tableFormat = "%s %4s  %-21s %-6s %6s  %-9s %6s  %s\n"

// fileColumn is the width of the table's FILE column in terminal cells.
const fileColumn = 40

func (p *printer) header() {
	fmt.Fprintf(p.w, tableFormat, cell("FILE", fileColumn), "FACE", "BOX (x,y w×h)", "GENDER", "PROB", "AGE", "PROB", "YEARS")
}

// errorLine is the JSON line of a file that was skipped or failed.
type errorLine struct {
	File    string `json:"file"`
	Error   string `json:"error"`
	Skipped bool   `json:"skipped"`
}

// printError writes r's error as a JSON line in the JSON modes, so that
// every input appears in the output; the table shows errors on stderr only.
func (p *printer) printError(r result) error {
	if !p.json && !p.crop {
		return nil
	}
	return json.NewEncoder(p.w).Encode(errorLine{File: r.file, Error: r.err.Error(), Skipped: r.skipped})
}

func (p *printer) print(r result) error {
	if p.json || p.crop {
		if err := json.NewEncoder(p.w).Encode(fileLine{File: r.file, Result: r.res}); err != nil {
			return err
		}
	} else {
		name := cell(r.file, fileColumn)
		if len(r.res.Faces) == 0 {
			fmt.Fprintf(p.w, tableFormat, name, "-", "no face found", "", "", "", "", "")
		}
		for _, f := range r.res.Faces {
			box := fmt.Sprintf("%d,%d %d×%d", f.Box.Min.X, f.Box.Min.Y, f.Box.Dx(), f.Box.Dy())
			years := ""
			if f.HasAge() {
				years = fmt.Sprintf("%.0f ± %.0f", f.Age, f.AgeStd)
			}
			fmt.Fprintf(p.w, tableFormat, name, strconv.Itoa(f.Index), box, f.Gender,
				pct(f.GenderProb), f.AgeGroup, pct(f.AgeProb()), years)
		}
	}
	if p.annotate != "" && r.res.Image != nil {
		return p.writeAnnotated(r)
	}
	return nil
}

// pct writes a probability as a percentage with one decimal, never
// rounding a value short of certainty up to "100.0%".
func pct(p float32) string {
	if p > 0.999 && p < 1 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", 100*p)
}

// count writes n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeAnnotated saves r's image with its faces drawn: JPEG for JPEG
// inputs, PNG otherwise; the image analysed, so downscaled when the photo
// was over --max-pixels. Names are the input's base name, made unique.
func (p *printer) writeAnnotated(r result) error {
	ext := ".png"
	if r.res.Format == "jpeg" {
		ext = ".jpg"
	}
	base := strings.TrimSuffix(filepath.Base(r.file), filepath.Ext(r.file))
	name := base + ext
	for i := 2; p.used[name]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	p.used[name] = true
	path := filepath.Join(p.annotate, name)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("predict: --annotate: %w", err)
	}
	img := r.res.Annotate()
	if ext == ".jpg" {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(f, img)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("predict: writing %s: %w", path, err)
	}
	return nil
}
