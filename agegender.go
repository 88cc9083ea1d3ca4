// Package agegender tells the gender and age group of every face in a
// photo.
//
// An [Analyzer] finds faces with package face, aligns each one to the
// framing of the UTKFace training images, and runs a gender and an age
// network on it (Levi & Hassner 2015 and successors, see package model):
//
//	a, err := agegender.New(agegender.Options{})
//	if err != nil { ... }
//	defer a.Close()
//	res, err := a.AnalyzeReader(ctx, photo) // any io.Reader: a file, a request body
//	if err != nil { ... }                   // errors.Is(err, agegender.ErrNotImage), ...
//	for _, f := range res.Faces {
//		fmt.Println(f.Box, f.Gender, f.GenderProb, f.AgeGroup, f.Age)
//	}
//
// [Analyzer.Analyze] takes an image.Image instead, and
// [Analyzer.AnalyzeCrop] an image that already is a face crop. Every call
// takes a context: a cancelled or expired one stops the call between its
// stages and takes its faces out of the queue for the networks.
//
// The networks are the models built into the binary (package models) unless
// Options names model files. An Analyzer is safe for concurrent use, and
// faces from concurrent calls are batched together for the networks (see
// predict.Runner), so a server should share one Analyzer among all its
// requests.
package agegender

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"slices"
	"sync"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
	"github.com/gomlx/compute"
)

// Options configures [New]. The zero value is ready to use: the built-in
// models on the default backend, centre crops, default face detection.
// The CLI's predict and serve commands use these same defaults.
type Options struct {
	// Backend is the compute backend: "go", "onnx" or "xla" (see package
	// backend). Empty means $GOMLX_BACKEND, then backend.Default: ONNX
	// Runtime when compiled in (-tags onnx) and installed, else "go".
	Backend string
	// Model is a joint gender and age model file (written by agegender
	// train --trunk NAME --task both): one network, one forward pass per
	// face, age in years. GenderModel and AgeModel are instead separate
	// gender and age-group model files (the paper's nets), used together.
	// All empty means the model built into the binary.
	Model                 string
	GenderModel, AgeModel string
	// TenCrop averages the networks over 10 crops of each face (4 corners
	// and the centre, each also mirrored), as in the paper: slightly more
	// accurate and 10 times the work. Otherwise only the centre crop is used.
	TenCrop bool
	// Detector is the face detector: "blazeface" (the default when empty)
	// or "pigo"; see face.NewFinder.
	Detector string
	// MinScore is the smallest detection score (0–1, Face.DetectionScore)
	// reported; 0 means the detector's calibrated default.
	MinScore float32
	// Face tunes the pigo detector (and MaxFaces either); the zero value
	// means face.DefaultOptions().
	Face face.Options
	// CropsOnly tells New that the Analyzer will only be given face crops
	// (AnalyzeCrop): it does not start loading the face detector, which
	// costs a one-photo process about as much processor time as the
	// classifier. A call that detects still loads it, when first needed.
	CropsOnly bool
	// MaxBatch bounds how many faces, gathered from concurrent calls, run
	// through the networks together. Zero means 16.
	MaxBatch int
	// Limits bounds the photos AnalyzeReader accepts. Zero MaxPixels and
	// MaxBytes mean imageio.DefaultLimits' (50 megapixels, 64 MiB
	// encoded). A photo over MaxPixels is not refused but downscaled to
	// fit it, its boxes and landmarks still given in the photo's pixels,
	// as long as its full-size decoded pixels fit in MaxDecodeBytes: zero
	// means imageio.DefaultDecodeBytes (1 GiB, about 350 megapixels of
	// JPEG), negative refuses every photo over MaxPixels. Larger photos
	// get ErrTooLarge. A nil Large means a lock of the Analyzer's own, so
	// that it decodes one over-limit photo at a time: the memory bound of
	// decoding is then MaxDecodeBytes once, plus for each concurrent call
	// about 4×MaxPixels bytes and the encoded photo.
	Limits imageio.Limits
}

// ErrClosed is returned by calls on an Analyzer after Close.
var ErrClosed = errors.New("agegender: analyzer is closed")

// ErrNoSuchModel is returned by New for a model file that does not exist
// (errors.Is(err, fs.ErrNotExist) holds too) or a binary without built-in
// models.
var ErrNoSuchModel = errors.New("agegender: no such model")

// Errors about the photo given to AnalyzeReader, to test with errors.Is
// (they are package imageio's).
var (
	ErrEmptyImage        = imageio.ErrEmpty             // no bytes at all
	ErrNotImage          = imageio.ErrNotImage          // text, video or other non-image data
	ErrUnsupportedFormat = imageio.ErrUnsupportedFormat // an image format not decoded here: HEIC, AVIF, TIFF, …
	ErrCorruptImage      = imageio.ErrCorrupt           // a supported format, damaged
	ErrTooLarge          = imageio.ErrTooLarge          // over Options.Limits
)

// Analyzer finds faces and predicts their gender and age group. Create one
// with [New]; it is safe for concurrent use. Call Close when done.
type Analyzer struct {
	opts     Options
	backend  compute.Backend
	detector *face.Finder
	gender   *predict.Runner // the gender net, or the joint net
	age      *predict.Runner // the age-group net; nil with a joint net
	framing  face.Framing    // where the nets' training crops have the face (their prep.Spec)

	// loaded is closed once gender, age and framing are set, or loadErr;
	// New loads the built-in models on another goroutine (see New).
	loaded  chan struct{}
	loadErr error

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
	warm   sync.WaitGroup // the loading and compilation New starts
}

// New loads the models, and starts compiling the networks for one face on
// another goroutine: the first call then finds them compiled, or waits
// less, having decoded the photo and found its faces meanwhile on another
// core (this saves wall time, not CPU; a program that never classifies a
// face pays for the compilation). Unless Options.CropsOnly is set, it also
// starts loading and compiling the face detector's networks on another
// goroutine at once, while it loads the models. The models built into the
// binary (no model file named) are loaded on another goroutine too, so
// that New returns at once and a call decodes its photo and finds its
// faces meanwhile: they are checked when the binary is built, and a
// damaged binary's error is returned by every call. Model files are
// loaded, and checked, before New returns.
func New(opts Options) (*Analyzer, error) {
	if opts.MaxBatch < 0 {
		return nil, fmt.Errorf("agegender: Options.MaxBatch is %d; use a positive bound or 0 for the default", opts.MaxBatch)
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 16
	}
	if opts.Limits.MaxDecodeBytes == 0 {
		opts.Limits.MaxDecodeBytes = imageio.DefaultDecodeBytes
	}
	if opts.Limits.Large == nil {
		opts.Limits.Large = &sync.Mutex{}
	}
	// Checked before the backend opens (up to a second for ONNX Runtime).
	if err := face.CheckFinder(opts.Detector, opts.MinScore, opts.Face); err != nil {
		return nil, err
	}
	b, err := backend.OpenInference(opts.Backend)
	if err != nil {
		return nil, err
	}
	det, err := face.NewFinder(opts.Detector, b, opts.MinScore, opts.Face)
	if err != nil {
		b.Finalize()
		return nil, err
	}
	a := &Analyzer{opts: opts, backend: b, detector: det, loaded: make(chan struct{})}
	if !opts.CropsOnly {
		// The detector loads while the models do, on the other core.
		a.warm.Add(1)
		go func() {
			defer a.warm.Done()
			_ = det.Load() // an error is left for the first Find to report
		}()
	}
	builtin := opts.Model == "" && opts.GenderModel == "" && opts.AgeModel == "" && models.HasBuiltin(models.Joint)
	if !builtin {
		if err := a.load(b, opts); err != nil {
			a.warm.Wait()
			b.Finalize()
			return nil, err
		}
	}
	a.warm.Add(1)
	go func() {
		defer a.warm.Done()
		if builtin && a.load(b, opts) != nil {
			return // every call reports the error
		}
		a.warmNets()
	}()
	return a, nil
}

// load loads the models, sets gender, age and framing or loadErr, and
// closes loaded.
func (a *Analyzer) load(b compute.Backend, opts Options) (err error) {
	defer close(a.loaded)
	defer func() { a.loadErr = err }()
	gp, ap, err := loadModels(b, opts)
	if err != nil {
		return err
	}
	if a.framing, err = framingOf(gp, ap); err != nil {
		gp.Close()
		if ap != nil {
			ap.Close()
		}
		return err
	}
	mode := predict.Center
	if opts.TenCrop {
		mode = predict.TenCrop
	}
	a.gender = predict.NewRunner(gp, mode, opts.MaxBatch)
	if ap != nil {
		a.age = predict.NewRunner(ap, mode, opts.MaxBatch)
	}
	return nil
}

// warmNets compiles the networks for one face; an error is left for the
// first call to report.
func (a *Analyzer) warmNets() {
	if a.gender.Warm() == nil && a.age != nil {
		_ = a.age.Warm()
	}
}

// models waits for the models New loads and returns its error.
func (a *Analyzer) models() error {
	<-a.loaded
	return a.loadErr
}

// framingOf is the face framing the nets were trained on, from their
// preprocessing spec (prep.Spec.Framing): faces found in photos are aligned
// to it. Two nets must agree.
func framingOf(nets ...*model.Predictor) (face.Framing, error) {
	var name prep.Framing
	for _, p := range nets {
		if p == nil {
			continue
		}
		f := p.Info.Spec.Framing
		if f == "" {
			f = prep.FramingUTKFace
		}
		if name != "" && f != name {
			return face.Framing{}, fmt.Errorf("agegender: the gender net expects %s-framed faces and the age net %s-framed ones; use nets trained on the same framing", name, f)
		}
		name = f
	}
	switch name {
	case prep.FramingUTKFace, "":
		return face.UTKFace, nil
	case prep.FramingArcFace:
		return face.ArcFace, nil
	}
	return face.Framing{}, fmt.Errorf("agegender: the model expects faces framed as %q, which this version cannot cut from photos (known: %s, %s)", name, prep.FramingUTKFace, prep.FramingArcFace)
}

// loadModels opens the joint model (Options.Model, or the built-in one when
// no file is named and the binary has one) or else the gender and age nets.
func loadModels(b compute.Backend, opts Options) (gender, age *model.Predictor, err error) {
	separate := opts.GenderModel != "" || opts.AgeModel != ""
	if opts.Model != "" && separate {
		return nil, nil, errors.New("agegender: Options.Model (a joint model) and GenderModel/AgeModel (separate nets) exclude each other; set one or the other")
	}
	if opts.Model != "" || (!separate && models.HasBuiltin(models.Joint)) {
		p, err := loadPredictor(b, opts.Model, models.Joint, nil)
		return p, nil, err
	}
	if gender, err = loadPredictor(b, opts.GenderModel, models.Gender, data.TaskGender.ClassNames()); err != nil {
		return nil, nil, err
	}
	if age, err = loadPredictor(b, opts.AgeModel, models.Age, data.TaskAge.ClassNames()); err != nil {
		return nil, nil, err
	}
	return gender, age, nil
}

// loadPredictor opens the model file at path, or the built-in model for
// task when path is empty, and checks that it was trained for task (and,
// unless classes is nil, with those class names).
func loadPredictor(be compute.Backend, path, task string, classes []string) (*model.Predictor, error) {
	if path == "" && !models.HasBuiltin(task) {
		return nil, fmt.Errorf("%w: this binary has no built-in %s model; train one (agegender train) and pass its file", ErrNoSuchModel, task)
	}
	m, err := models.Load(path, task)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNoSuchModel, err)
	}
	if err != nil {
		return nil, err
	}
	if classes != nil && !slices.Equal(m.Info.ClassNames, classes) {
		return nil, fmt.Errorf("agegender: %s model %s has the classes %q; want %q", task, path, m.Info.ClassNames, classes)
	}
	return model.NewPredictor(be, m, backend.InferenceImpl(be))
}

// Info returns the descriptions of the gender and age models in use; for a
// joint model both are its description. It waits for the models New
// loads; if they failed to load, both are zero (and every call returns
// the error).
func (a *Analyzer) Info() (gender, age model.Info) {
	if a.models() != nil {
		return model.Info{}, model.Info{}
	}
	g := a.gender.Predictor().Info
	if a.age == nil {
		return g, g
	}
	return g, a.age.Predictor().Info
}

// Backend describes the compute backend the analyzer runs on, as the
// commands print it after "backend: " ("ONNX Runtime (ONNX Runtime (CPU)
// …)", "pure Go (…), SIMD kernels", with a note when ONNX Runtime is
// compiled in but its library was not found, so it runs on pure Go).
func (a *Analyzer) Backend() string { return backend.Describe(a.backend) }

// enter starts a call: it fails after Close, and otherwise keeps Close
// waiting until leave.
func (a *Analyzer) enter() error {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (a *Analyzer) leave() { a.mu.RUnlock() }

// Analyze finds the faces in img and predicts each one's gender and age.
// An image without faces gives an empty slice and no error. Faces are
// ordered by detection score, best first, at most Options.Face.MaxFaces
// (default 64), with boxes and landmarks in img's pixel coordinates. It
// returns ctx.Err() when ctx ends before the answer is ready.
func (a *Analyzer) Analyze(ctx context.Context, img image.Image) ([]Face, error) {
	if err := a.enter(); err != nil {
		return nil, err
	}
	defer a.leave()
	return a.analyze(ctx, img)
}

func (a *Analyzer) analyze(ctx context.Context, img image.Image) ([]Face, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dets, err := a.detector.Find(img)
	if err != nil {
		return nil, err
	}
	if len(dets) == 0 {
		return []Face{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := a.models(); err != nil {
		return nil, err
	}
	crops := make([]image.Image, len(dets))
	for i, d := range dets {
		// The crop has the side of the framing's images (UTKFace's 200
		// pixels), so that the net's own resize (prep.Spec) sees the same
		// kind of image as in training.
		crops[i] = face.AlignTo(img, d, int(a.framing.Side), a.framing)
	}
	out, err := a.classify(ctx, crops)
	if err != nil {
		return nil, err
	}
	for i, d := range dets {
		out[i].Index = i
		out[i].Box = d.Box.Intersect(img.Bounds())
		out[i].DetectionScore = d.Score
		out[i].Landmarks = d.Landmarks
	}
	return out, nil
}

// AnalyzeReader decodes a photo (JPEG, PNG, GIF, BMP or WebP, with the EXIF
// orientation of JPEGs applied and transparency shown on white) within
// Options.Limits, downscaling one over the pixel limit, and analyses it
// like Analyze. The Result's boxes and landmarks are in the photo's
// pixels. Errors about the photo match ErrEmptyImage, ErrNotImage,
// ErrUnsupportedFormat, ErrCorruptImage or ErrTooLarge with errors.Is.
func (a *Analyzer) AnalyzeReader(ctx context.Context, r io.Reader) (*Result, error) {
	if err := a.enter(); err != nil {
		return nil, err
	}
	defer a.leave()
	img, info, err := imageio.DecodeInfo(r, a.opts.Limits)
	if err != nil {
		return nil, err
	}
	faces, err := a.analyze(ctx, img)
	if err != nil {
		return nil, err
	}
	photo := image.Rect(0, 0, info.Width, info.Height)
	return &Result{
		Width: info.Width, Height: info.Height, Faces: scaleFaces(faces, img.Bounds(), photo),
		Image: img, Format: info.Format,
	}, nil
}

// AnalyzeCrop predicts gender and age for an image that already is a face
// crop framed like the UTKFace "aligned & cropped" images (the face fills
// the frame, eyes level). No face detection is done; the returned Face's
// Box is img's bounds.
func (a *Analyzer) AnalyzeCrop(ctx context.Context, img image.Image) (Face, error) {
	if err := a.enter(); err != nil {
		return Face{}, err
	}
	defer a.leave()
	out, err := a.classify(ctx, []image.Image{img})
	if err != nil {
		return Face{}, err
	}
	out[0].Box = img.Bounds()
	return out[0], nil
}

// Close releases the models and the backend once the calls in progress
// have finished; later calls return ErrClosed. Close is idempotent.
func (a *Analyzer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.warm.Wait()
	if a.gender != nil {
		a.gender.Close()
	}
	if a.age != nil {
		a.age.Close()
	}
	a.backend.Finalize()
	return nil
}

// classify runs the networks on face crops, in batches shared with
// concurrent calls.
func (a *Analyzer) classify(ctx context.Context, crops []image.Image) ([]Face, error) {
	if err := a.models(); err != nil {
		return nil, err
	}
	resized := func(r *predict.Runner) [][]uint8 {
		pix := make([][]uint8, len(crops))
		for i, c := range crops {
			pix[i] = predict.Resized(r.Predictor(), c)
		}
		return pix
	}
	gpix := resized(a.gender)
	g, err := a.gender.Probs(ctx, gpix)
	if err != nil {
		return nil, err
	}
	out := make([]Face, len(crops))
	if a.age == nil {
		for i, p := range g {
			out[i] = jointFace(p)
		}
		return out, nil
	}
	apix := gpix
	if a.age.Predictor().Info.Resize != a.gender.Predictor().Info.Resize {
		apix = resized(a.age)
	}
	age, err := a.age.Probs(ctx, apix)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = newFace(g[i], age[i])
	}
	return out, nil
}

// newFace turns the gender and age-group probabilities (in Gender and
// AgeGroup order, as loadModels checked) into a Face.
func newFace(g, groups []float32) Face {
	var f Face
	gi := argmax(g)
	f.Gender, f.GenderProb = Gender(gi), g[gi]
	copy(f.AgeProbs[:], groups)
	f.AgeGroup = AgeGroup(argmax(f.AgeProbs[:]))
	return f
}

// jointFace turns a joint net's outputs into a Face.
func jointFace(p []float32) Face {
	g, years := model.SplitJoint(p)
	mean, std, groups := model.AgeEstimate(years)
	f := newFace(g, groups[:])
	f.Age, f.AgeStd = mean, std
	return f
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
