package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	File       string             `json:"file"`
	Gender     string             `json:"gender"`
	GenderProb float32            `json:"gender_prob"`
	AgeGroup   string             `json:"age_group"`
	AgeProbs   map[string]float32 `json:"age_probs"`
	Error      string             `json:"error,omitempty"`
}

// faceLine is one line of `predict --json` output: the --crop contract
// plus the face's index and box ([x, y, width, height] in the photo's
// pixels, after EXIF orientation).
type faceLine struct {
	File           string             `json:"file"`
	Face           int                `json:"face"`
	Box            [4]int             `json:"box"`
	Gender         string             `json:"gender"`
	GenderProb     float32            `json:"gender_prob"`
	AgeGroup       string             `json:"age_group"`
	AgeProbs       map[string]float32 `json:"age_probs"`
	DetectionScore float32            `json:"detection_score"`
}

// noFaceLine is the --json line of a photo without faces.
type noFaceLine struct {
	File  string `json:"file"`
	Faces int    `json:"faces"`
}

// imageExts are the extensions picked up when walking folders.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".webp": true}

const predictUsage = `usage: agegender predict [flags] FILE|FOLDER|GLOB...

Finds every face in the photos and prints its gender and age group.
Folders are searched recursively for .jpg .jpeg .png .gif .bmp .webp files;
quote glob patterns ('photos/*.jpg') to let agegender expand them.
Results come out in input order. Unreadable inputs are reported on stderr
and skipped; the command then exits with status 1.

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
	genderModel := fs.String("gender-model", "", "gender model `file` (default: built-in)")
	ageModel := fs.String("age-model", "", "age model `file` (default: built-in)")
	fs.StringVar(genderModel, "model-gender", "", "same as --gender-model")
	fs.StringVar(ageModel, "model-age", "", "same as --age-model")
	tencrop := fs.Bool("tencrop", true, "average 10 crops (4 corners + centre, mirrored) instead of the centre crop")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	workers := fs.Int("workers", runtime.NumCPU(), "images decoded and analysed at once")
	quiet := fs.Bool("quiet", false, "no progress bar or summary on stderr")
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
	files, walked, failed := expandInputs(fs.Args())
	if *annotate != "" {
		if err := os.MkdirAll(*annotate, 0o755); err != nil {
			return fmt.Errorf("predict: --annotate: %w", err)
		}
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintln(os.Stderr, backend.Describe(b))
	}
	b.Finalize()
	fopts := face.DefaultOptions()
	fopts.MinSize = *minFace
	a, err := agegender.New(agegender.Options{
		Backend: *be, GenderModel: *genderModel, AgeModel: *ageModel,
		TenCrop: *tencrop, Face: fopts,
	})
	if err != nil {
		return err
	}
	defer a.Close()

	var bar *progressbar.ProgressBar
	if walked && !*quiet {
		bar = progressbar.NewOptions(len(files), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("analysing"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("img"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	out := &printer{w: os.Stdout, json: *asJSON, crop: *crop, annotate: *annotate, used: map[string]bool{}}
	if !*asJSON && !*crop {
		out.header()
	}
	start := time.Now()
	images, faces := 0, 0
	results := analyseAll(ctx, a, files, *workers, *crop, *annotate != "")
	for r := range results {
		if bar != nil {
			bar.Add(1)
		}
		if r.err != nil {
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintf(os.Stderr, "agegender: %v\n", r.err)
			failed++
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
		fmt.Fprintf(os.Stderr, "%d images, %d faces in %.1f s (%.1f img/s)\n", images, faces, secs, float64(images)/max(secs, 1e-9))
	}
	if failed > 0 {
		return fmt.Errorf("predict: %d inputs could not be read (see the messages above)", failed)
	}
	return nil
}

// expandInputs turns the command-line inputs into image files: files as
// they are, folders walked recursively for image extensions, glob patterns
// expanded. walked tells whether a folder or pattern was given (worth a
// progress bar). Inputs that give nothing are reported on stderr and
// counted in failed.
func expandInputs(args []string) (files []string, walked bool, failed int) {
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "agegender: "+format+"\n", a...)
		failed++
	}
	for _, in := range args {
		st, err := os.Stat(in)
		if err != nil && strings.ContainsAny(in, "*?[") {
			matches, gerr := filepath.Glob(in)
			if gerr != nil {
				fail("%s: bad glob pattern: %v", in, gerr)
				continue
			}
			if len(matches) == 0 {
				fail("%s: no files match the pattern", in)
				continue
			}
			walked = true
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.IsDir() {
					files = append(files, walkImages(m, fail)...)
				} else {
					files = append(files, m)
				}
			}
			continue
		}
		if err != nil {
			fail("%v", err) // *PathError names the file
			continue
		}
		if st.IsDir() {
			walked = true
			found := walkImages(in, fail)
			if len(found) == 0 {
				fail("%s: no .jpg .jpeg .png .gif .bmp or .webp files in this folder", in)
			}
			files = append(files, found...)
			continue
		}
		files = append(files, in)
	}
	return files, walked, failed
}

// walkImages lists the image files under dir in lexical order, skipping
// hidden folders.
func walkImages(dir string, fail func(string, ...any)) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fail("%v", err)
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if imageExts[strings.ToLower(filepath.Ext(p))] {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// result is the analysis of one input file.
type result struct {
	file   string
	format string
	img    image.Image // kept only for --annotate
	faces  []agegender.Face
	err    error
}

// analyseAll analyses files on a pool of workers and delivers the results
// in input order. At most 2×workers images are decoded and waiting at any
// time, so memory stays bounded however many files there are.
func analyseAll(ctx context.Context, a *agegender.Analyzer, files []string, workers int, crop, keepImage bool) <-chan result {
	type job struct {
		file string
		out  chan result
	}
	jobs := make(chan job)
	order := make(chan chan result, 2*workers)
	for range workers {
		go func() {
			for j := range jobs {
				j.out <- analyseFile(a, j.file, crop, keepImage)
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

func analyseFile(a *agegender.Analyzer, file string, crop, keepImage bool) result {
	img, format, err := imageio.DecodeFile(file, imageio.DefaultLimits)
	if err != nil {
		return result{file: file, err: err}
	}
	r := result{file: file, format: format}
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

const tableFormat = "%-40s %4s  %-21s %-6s %6s  %-9s %6s\n"

func (p *printer) header() {
	fmt.Fprintf(p.w, tableFormat, "FILE", "FACE", "BOX (x,y w×h)", "GENDER", "PROB", "AGE", "PROB")
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
			b := f.Box
			if err := enc.Encode(faceLine{
				File: r.file, Face: f.Index, Box: [4]int{b.Min.X, b.Min.Y, b.Dx(), b.Dy()},
				Gender: f.Gender, GenderProb: f.GenderProb, AgeGroup: f.AgeGroup, AgeProbs: f.AgeProbs,
				DetectionScore: f.DetectionScore,
			}); err != nil {
				return err
			}
		}
	default:
		name := r.file
		if len(name) > 40 {
			name = "…" + name[len(name)-39:]
		}
		if len(r.faces) == 0 {
			fmt.Fprintf(p.w, tableFormat, name, "-", "no face found", "", "", "", "")
		}
		for _, f := range r.faces {
			b := f.Box
			box := fmt.Sprintf("%d,%d %d×%d", b.Min.X, b.Min.Y, b.Dx(), b.Dy())
			fmt.Fprintf(p.w, tableFormat, name, strconv.Itoa(f.Index), box, f.Gender,
				pct(f.GenderProb), f.AgeGroup, pct(f.AgeProb()))
		}
	}
	if p.annotate != "" && r.img != nil {
		return p.writeAnnotated(r)
	}
	return nil
}

func pct(p float32) string { return fmt.Sprintf("%.1f%%", 100*p) }

// writeAnnotated saves r's image with its faces drawn: JPEG for JPEG
// inputs, PNG otherwise. Names are the input's base name, made unique.
func (p *printer) writeAnnotated(r result) error {
	ext := ".png"
	if r.format == "jpeg" {
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
