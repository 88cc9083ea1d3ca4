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
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agegender/agegender"
	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
	"github.com/schollz/progressbar/v3"
)

// cropResult is one line of `predict --crop` output: a stable contract
// that other tools read.
type cropResult struct {
	File       string                  `json:"file"`
	Gender     string                  `json:"gender"`
	GenderProb float32                 `json:"gender_prob"`
	AgeGroup   string                  `json:"age_group"`
	AgeProbs   agegender.AgeGroupProbs `json:"age_probs"`
	Error      string                  `json:"error,omitempty"`
}

// faceLine is one line of `predict --json` output: the --crop contract
// plus the face's index and box ([x, y, width, height] in the photo's
// pixels, after EXIF orientation, at full size even when the photo was
// downscaled for analysis, and clipped to the photo: the detector's box
// may reach past its edges, the printed one never does).
type faceLine struct {
	File       string                  `json:"file"`
	Face       int                     `json:"face"`
	Box        [4]int                  `json:"box"`
	Gender     string                  `json:"gender"`
	GenderProb float32                 `json:"gender_prob"`
	AgeGroup   string                  `json:"age_group"`
	AgeProbs   agegender.AgeGroupProbs `json:"age_probs"`
	// Age and AgeStd are the expected age and its spread in years, from a
	// model that estimates years (the built-in joint model); else absent.
	Age            *float64 `json:"age,omitempty"`
	AgeStd         *float64 `json:"age_std,omitempty"`
	DetectionScore float32  `json:"detection_score"` // 0–1, see face.Face.Score
	// Landmarks are BlazeFace's keypoints as [x, y] in the photo's pixels:
	// the person's right eye, left eye, nose tip, mouth, right ear, left
	// ear. Absent for pigo.
	Landmarks [][2]float64 `json:"landmarks,omitempty"`
}

// photoPoints maps landmarks like photoBox maps boxes, to 0.1 pixel.
func photoPoints(pts []face.Point, img image.Rectangle, w, h int) [][2]float64 {
	var out [][2]float64
	sx, sy := float64(w)/float64(max(1, img.Dx())), float64(h)/float64(max(1, img.Dy()))
	for _, p := range pts {
		out = append(out, [2]float64{math.Round((p.X-float64(img.Min.X))*sx*10) / 10, math.Round((p.Y-float64(img.Min.Y))*sy*10) / 10})
	}
	return out
}

// noFaceLine is the --json line of a photo without faces.
type noFaceLine struct {
	File  string `json:"file"`
	Faces int    `json:"faces"`
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

With --json, --crop or --out, a file that is skipped or fails gets a line
{"file": ..., "error": ..., "skipped": true|false} so that every input
appears in the output.

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
	crop := fs.Bool("crop", false, "inputs are face crops (like UTKFace's): no face detection, one JSON line per file")
	asJSON := fs.Bool("json", false, "print one JSON object per face per line instead of a table")
	annotate := fs.String("annotate", "", "write copies of the photos with faces boxed and labelled into this `folder`")
	minFace := fs.Int("min-face", face.DefaultOptions().MinSize, "smallest face side searched for, in `pixels`")
	detector := fs.String("detector", face.Detectors[0], "face detector: blazeface (landmarks, turned faces) or pigo (the cascade; --min-face applies to it)")
	minScore := fs.Float64("min-score", 0, "smallest detection `score` (0–1) reported; 0 means the detector's calibrated default")
	jointModel := fs.String("model", "", "joint gender + age `file` (agegender train --trunk NAME --task both; default: built-in)")
	genderModel := fs.String("gender-model", "", "gender model `file` (default: built-in)")
	ageModel := fs.String("age-model", "", "age model `file` (default: built-in)")
	fs.StringVar(genderModel, "model-gender", "", "same as --gender-model")
	fs.StringVar(ageModel, "model-age", "", "same as --age-model")
	tencrop := fs.Bool("tencrop", false, "average 10 crops (4 corners + centre, mirrored; for the built-in model: the face and its mirror image) instead of the centre crop, as serve and the library do by default")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	workers := fs.Int("workers", runtime.NumCPU(), "images decoded and analysed at once")
	quiet := fs.Bool("quiet", false, "no progress bar or summary on stderr")
	maxPixels := fs.Int64("max-pixels", imageio.DefaultLimits.MaxPixels, "largest image width×height analysed; larger photos are downscaled to it (refused only beyond 1 GiB of decoded pixels, about 350 megapixels of JPEG)")
	shard := fs.String("shard", "", "analyse only share `k/n` of the files (1 ≤ k ≤ n), chosen by a hash of each path; run k = 1..n on n machines")
	outFile := fs.String("out", "", "write JSON lines (as --json, or --crop's) to this `file` instead of stdout")
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
	if *maxPixels < 1 {
		return fmt.Errorf("predict: --max-pixels %d: use at least 1", *maxPixels)
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
	be2, err := backend.Open(*be)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintln(os.Stderr, backend.Describe(be2))
	}
	be2.Finalize()
	fopts := face.DefaultOptions()
	fopts.MinSize = *minFace
	a, err := agegender.New(agegender.Options{
		Backend: *be, Model: *jointModel, GenderModel: *genderModel, AgeModel: *ageModel,
		TenCrop: *tencrop, Face: fopts,
		Detector: *detector, MinScore: float32(*minScore),
	})
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
	// Images over --max-pixels are decoded at full size one at a time
	// (imageio.Limits.Large), however many workers run.
	lim := imageio.Limits{MaxPixels: *maxPixels, MaxDecodeBytes: imageio.DefaultDecodeBytes, Large: &sync.Mutex{}}
	start := time.Now()
	images, faces, skipped, done := 0, 0, 0, 0
	results := analyseAll(ctx, a, files, lim, *workers, *crop, *annotate != "")
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
		faces += len(r.faces)
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
	info    imageio.Info    // Width, Height: the photo's size, for boxes
	bounds  image.Rectangle // of the analysed image, smaller when downscaled
	img     image.Image     // kept only for --annotate
	faces   []agegender.Face
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
				j.out <- analyseFile(a, j.file, lim, crop, keepImage)
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

func analyseFile(a *agegender.Analyzer, in input, lim imageio.Limits, crop, keepImage bool) result {
	file := in.path
	img, info, err := imageio.DecodeFileInfo(file, lim)
	if err != nil {
		return result{file: file, err: err, skipped: !in.explicit && skippable(err)}
	}
	r := result{file: file, info: info, bounds: img.Bounds()}
	if crop {
		f, err := a.AnalyzeCrop(img)
		r.faces, r.err = []agegender.Face{f}, err
	} else {
		r.faces, r.err = a.Analyze(img)
	}
	if r.err != nil {
		r.err = fmt.Errorf("%s: %w", file, r.err)
	}
	if keepImage {
		r.img = img
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
	enc := json.NewEncoder(p.w)
	switch {
	case p.crop:
		f := r.faces[0]
		if err := enc.Encode(cropResult{File: r.file, Gender: f.Gender, GenderProb: f.GenderProb, AgeGroup: f.AgeGroup, AgeProbs: f.AgeProbs}); err != nil {
			return err
		}
	case p.json:
		if len(r.faces) == 0 {
			if err := enc.Encode(noFaceLine{File: r.file}); err != nil {
				return err
			}
		}
		for _, f := range r.faces {
			if err := enc.Encode(faceLine{
				File: r.file, Face: f.Index, Box: photoBox(f.Box, r.bounds, r.info.Width, r.info.Height),
				Gender: f.Gender, GenderProb: f.GenderProb, AgeGroup: f.AgeGroup, AgeProbs: f.AgeProbs,
				DetectionScore: f.DetectionScore, Landmarks: photoPoints(f.Landmarks, r.bounds, r.info.Width, r.info.Height),
				Age: roundedYears(f.Age, f.HasAge()), AgeStd: roundedYears(f.AgeStd, f.HasAge()),
			}); err != nil {
				return err
			}
		}
	default:
		name := cell(r.file, fileColumn)
		if len(r.faces) == 0 {
			fmt.Fprintf(p.w, tableFormat, name, "-", "no face found", "", "", "", "", "")
		}
		for _, f := range r.faces {
			b := photoBox(f.Box, r.bounds, r.info.Width, r.info.Height)
			box := fmt.Sprintf("%d,%d %d×%d", b[0], b[1], b[2], b[3])
			years := ""
			if f.HasAge() {
				years = fmt.Sprintf("%.0f ± %.0f", f.Age, f.AgeStd)
			}
			fmt.Fprintf(p.w, tableFormat, name, strconv.Itoa(f.Index), box, f.Gender,
				pct(f.GenderProb), f.AgeGroup, pct(f.AgeProb()), years)
		}
	}
	if p.annotate != "" && r.img != nil {
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

// roundedYears is an age in years rounded to 0.1 for JSON, or nil (absent)
// when the model gives no years.
func roundedYears(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	r := math.Round(v*10) / 10
	return &r
}

// writeAnnotated saves r's image with its faces drawn: JPEG for JPEG
// inputs, PNG otherwise; the image analysed, so downscaled when the photo
// was over --max-pixels. Names are the input's base name, made unique.
func (p *printer) writeAnnotated(r result) error {
	ext := ".png"
	if r.info.Format == "jpeg" {
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
	img := agegender.Annotate(r.img, r.faces)
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
