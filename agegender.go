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
//	faces, err := a.AnalyzeBytes(jpegBytes)
//	for _, f := range faces {
//		fmt.Println(f.Box, f.Gender, f.GenderProb, f.AgeGroup)
//	}
//
// The networks are the models built into the binary (package models) unless
// Options names model files. An Analyzer is safe for concurrent use, and
// faces from concurrent calls are batched together for the networks, so a
// server should share one Analyzer among all its requests.
package agegender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
	"github.com/gomlx/compute"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Options configures [New]. The zero value is ready to use: the built-in
// models on the default backend, centre crops, default face detection.
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
	// MaxBatch bounds how many faces, gathered from concurrent calls, run
	// through the networks together. Zero means 16.
	MaxBatch int
	// Limits bounds the images AnalyzeBytes accepts; zero fields mean
	// imageio.DefaultLimits.
	Limits imageio.Limits
}

// Face is one analysed face.
//
// In JSON (see MarshalJSON) it is an object with the fields "face" (Index),
// "box" ([x, y, width, height] in pixels), "gender", "gender_prob",
// "age_group", "age_probs" (in age-group order), "age" and "age_std" (when
// the model estimates years) and "detection_score".
type Face struct {
	// Index numbers the faces of one image from 0, most confident
	// detection first.
	Index int
	// Box is the face square in the pixel coordinates of the analysed
	// image. It may reach past the image edges for faces cut by the frame.
	// For AnalyzeCrop it is the whole image.
	Box image.Rectangle
	// Gender is the most likely gender class ("m" or "f" for the built-in
	// model), and GenderProb its probability.
	Gender     string
	GenderProb float32
	// AgeGroup is the most likely age group, spelled like "25-32", and
	// AgeProbs the probability of every group.
	AgeGroup string
	AgeProbs AgeGroupProbs
	// Age is the expected age in years and AgeStd the standard deviation
	// of the model's age distribution, in years: a measure of how sure it
	// is. Both are 0 when the model predicts age groups only (HasAge).
	Age, AgeStd float64
	// DetectionScore is the face detector's confidence on a 0–1 scale
	// (see face.Face.Score); 0 for AnalyzeCrop.
	DetectionScore float32
	// Landmarks are the detector's keypoints in image coordinates: right
	// eye, left eye, nose tip, mouth, right ear, left ear (the person's
	// sides; see face.RightEye). Nil for pigo and AnalyzeCrop.
	Landmarks []face.Point
}

// faceJSON is the JSON form of a Face.
type faceJSON struct {
	Index          int           `json:"face"`
	Box            [4]int        `json:"box"`
	Gender         string        `json:"gender"`
	GenderProb     float32       `json:"gender_prob"`
	AgeGroup       string        `json:"age_group"`
	AgeProbs       AgeGroupProbs `json:"age_probs"`
	Age            *float64      `json:"age,omitempty"`
	AgeStd         *float64      `json:"age_std,omitempty"`
	DetectionScore float32       `json:"detection_score"`
	Landmarks      [][2]float64  `json:"landmarks,omitempty"`
}

// MarshalJSON writes f as a JSON object whose "box" is [x, y, width, height].
func (f Face) MarshalJSON() ([]byte, error) {
	return json.Marshal(faceJSON{
		Index: f.Index, Box: [4]int{f.Box.Min.X, f.Box.Min.Y, f.Box.Dx(), f.Box.Dy()},
		Gender: f.Gender, GenderProb: f.GenderProb, AgeGroup: f.AgeGroup,
		AgeProbs: f.AgeProbs, DetectionScore: f.DetectionScore, Landmarks: landmarksJSON(f.Landmarks),
		Age: years(f.Age, f.HasAge()), AgeStd: years(f.AgeStd, f.HasAge()),
	})
}

// HasAge reports whether the face carries an age in years.
func (f Face) HasAge() bool { return f.Age != 0 || f.AgeStd != 0 }

// years rounds an age to 0.1 year for JSON, or omits it.
func years(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	r := math.Round(v*10) / 10
	return &r
}

// landmarksJSON writes points as [x, y] pairs rounded to 0.1 pixel.
func landmarksJSON(pts []face.Point) [][2]float64 {
	if len(pts) == 0 {
		return nil
	}
	out := make([][2]float64, len(pts))
	for i, p := range pts {
		out[i] = [2]float64{math.Round(p.X*10) / 10, math.Round(p.Y*10) / 10}
	}
	return out
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (f *Face) UnmarshalJSON(b []byte) error {
	var j faceJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Face{
		Index: j.Index, Box: image.Rect(j.Box[0], j.Box[1], j.Box[0]+j.Box[2], j.Box[1]+j.Box[3]),
		Gender: j.Gender, GenderProb: j.GenderProb, AgeGroup: j.AgeGroup,
		AgeProbs: j.AgeProbs, DetectionScore: j.DetectionScore,
	}
	if j.Age != nil {
		f.Age = *j.Age
	}
	if j.AgeStd != nil {
		f.AgeStd = *j.AgeStd
	}
	for _, p := range j.Landmarks {
		f.Landmarks = append(f.Landmarks, face.Point{X: p[0], Y: p[1]})
	}
	return nil
}

// AgeGroupProbs maps age-group names to probabilities. Its JSON object
// lists the groups in age order (0-2, 4-6, …, 60-100), not sorted as
// strings, then any other names sorted.
type AgeGroupProbs map[string]float32

// MarshalJSON writes the groups in age order.
func (p AgeGroupProbs) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("null"), nil
	}
	var keys []string
	seen := map[string]bool{}
	for _, n := range data.AgeGroupNames {
		if _, ok := p[n]; ok {
			keys = append(keys, n)
			seen[n] = true
		}
	}
	var rest []string
	for k := range p {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range append(keys, rest...) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(p[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// AgeProb is the probability of the chosen age group.
func (f Face) AgeProb() float32 { return f.AgeProbs[f.AgeGroup] }

// ErrClosed is returned by calls on an Analyzer after Close.
var ErrClosed = errors.New("agegender: analyzer is closed")

// Errors about the image given to AnalyzeBytes, to test with errors.Is
// (they are package imageio's). A model file that does not exist gives an
// error for which errors.Is(err, fs.ErrNotExist) holds.
var (
	ErrEmptyImage        = imageio.ErrEmpty             // no bytes at all
	ErrNotImage          = imageio.ErrNotImage          // text, video or other non-image data
	ErrUnsupportedFormat = imageio.ErrUnsupportedFormat // an image format not decoded here: HEIC, AVIF, TIFF, …
	ErrCorruptImage      = imageio.ErrCorrupt           // a supported format, damaged
	ErrTooLarge          = imageio.ErrTooLarge          // over Options.Limits
)

// alignSide is the side of the aligned face crops: that of the UTKFace
// images the networks were trained on, so that the networks' own resize
// (model.Info.Resize) sees the same kind of image as in training.
const alignSide = 200

// batchWait is how long the batcher waits for more faces to fill a batch
// once it holds some. It is short against the cost of a network run, so a
// lone caller hardly notices it, while concurrent callers share batches.
const batchWait = 2 * time.Millisecond

// Analyzer finds faces and predicts their gender and age group. Create one
// with [New]; it is safe for concurrent use. Call Close when done.
type Analyzer struct {
	opts     Options
	backend  compute.Backend
	detector *face.Finder
	gender   *model.Predictor // the gender net, or the joint net
	age      *model.Predictor // the age-group net; nil with a joint net
	mode     predict.Mode

	reqs      chan *request
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// request is a set of aligned faces waiting for the networks.
type request struct {
	faces []image.Image
	probs [][2][]float32 // per face: gender, age
	err   error
	done  chan struct{}
}

// New loads the models and the face detector and starts the batcher.
func New(opts Options) (*Analyzer, error) {
	if opts.MaxBatch < 0 {
		return nil, fmt.Errorf("agegender: Options.MaxBatch is %d; use a positive bound or 0 for the default", opts.MaxBatch)
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 16
	}
	b, err := backend.Open(opts.Backend)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Analyzer, error) {
		b.Finalize()
		return nil, err
	}
	gp, ap, err := loadModels(b, opts)
	if err != nil {
		return fail(err)
	}
	det, err := face.NewFinder(opts.Detector, b, opts.MinScore, opts.Face)
	if err != nil {
		return fail(err)
	}
	a := &Analyzer{
		opts: opts, backend: b, detector: det, gender: gp, age: ap, mode: predict.Center,
		reqs: make(chan *request), closing: make(chan struct{}), done: make(chan struct{}),
	}
	if opts.TenCrop {
		a.mode = predict.TenCrop
	}
	go a.batcher()
	return a, nil
}

// loadModels opens the joint model (Options.Model, or the built-in one when
// no file is named and the binary has one) or else the gender and age nets.
func loadModels(b compute.Backend, opts Options) (gender, age *model.Predictor, err error) {
	separate := opts.GenderModel != "" || opts.AgeModel != ""
	if opts.Model != "" && separate {
		return nil, nil, errors.New("agegender: Options.Model (a joint model) and GenderModel/AgeModel (separate nets) exclude each other; set one or the other")
	}
	if opts.Model != "" || (!separate && models.HasBuiltin(model.HeadsGenderAge)) {
		p, err := loadPredictor(b, opts.Model, model.HeadsGenderAge)
		return p, nil, err
	}
	if gender, err = loadPredictor(b, opts.GenderModel, models.Gender); err != nil {
		return nil, nil, err
	}
	if age, err = loadPredictor(b, opts.AgeModel, models.Age); err != nil {
		return nil, nil, err
	}
	return gender, age, nil
}

// loadPredictor opens the model file at path, or the built-in model for
// task when path is empty, and checks that it was trained for task.
func loadPredictor(be compute.Backend, path, task string) (*model.Predictor, error) {
	m, err := models.Load(path, task)
	if err != nil {
		return nil, err
	}
	return model.NewPredictor(be, m, backend.InferenceImpl(be))
}

// Info returns the descriptions of the gender and age models in use; for a
// joint model both are its description.
func (a *Analyzer) Info() (gender, age model.Info) {
	if a.age == nil {
		return a.gender.Info, a.gender.Info
	}
	return a.gender.Info, a.age.Info
}

// Analyze finds the faces in img and predicts each one's gender and age
// group. An image without faces gives an empty slice and no error. Faces
// are ordered by detection score, best first, and at most
// Options.Face.MaxFaces (default 64) are returned.
func (a *Analyzer) Analyze(img image.Image) ([]Face, error) {
	dets, err := a.detector.Find(img)
	if err != nil {
		return nil, err
	}
	if len(dets) == 0 {
		return []Face{}, nil
	}
	crops := make([]image.Image, len(dets))
	for i, d := range dets {
		crops[i] = face.Align(img, d, alignSide)
	}
	out, err := a.classify(crops)
	if err != nil {
		return nil, err
	}
	for i, d := range dets {
		out[i].Index = i
		out[i].Box = d.Box
		out[i].DetectionScore = d.Score
		out[i].Landmarks = d.Landmarks
	}
	return out, nil
}

// AnalyzeBytes decodes an encoded image (JPEG, PNG, GIF, BMP or WebP, with
// the EXIF orientation of JPEGs applied) within Options.Limits and analyses
// it like Analyze.
func (a *Analyzer) AnalyzeBytes(b []byte) ([]Face, error) {
	img, _, err := imageio.Decode(bytes.NewReader(b), a.opts.Limits)
	if err != nil {
		return nil, err
	}
	return a.Analyze(img)
}

// AnalyzeCrop predicts gender and age group for an image that already is a
// face crop framed like the UTKFace "aligned & cropped" images (the face
// fills the frame, eyes level). No face detection is done; the returned
// Face's Box is img's bounds.
func (a *Analyzer) AnalyzeCrop(img image.Image) (Face, error) {
	out, err := a.classify([]image.Image{img})
	if err != nil {
		return Face{}, err
	}
	out[0].Box = img.Bounds()
	return out[0], nil
}

// Close stops the batcher. Calls in progress finish; later calls return
// ErrClosed. Close is idempotent.
func (a *Analyzer) Close() error {
	a.closeOnce.Do(func() {
		close(a.closing)
		<-a.done
		a.backend.Finalize()
	})
	<-a.done
	return nil
}

// classify runs the networks on face crops through the batcher.
func (a *Analyzer) classify(crops []image.Image) ([]Face, error) {
	r := &request{faces: crops, done: make(chan struct{})}
	select {
	case a.reqs <- r:
	case <-a.closing:
		return nil, ErrClosed
	}
	<-r.done
	if r.err != nil {
		return nil, r.err
	}
	out := make([]Face, len(crops))
	for i, p := range r.probs {
		out[i] = a.face(p[0], p[1])
	}
	return out, nil
}

// face turns network outputs into a Face.
func (a *Analyzer) face(g, age []float32) Face {
	if a.age == nil {
		return jointFace(g)
	}
	f := Face{AgeProbs: make(AgeGroupProbs, len(age))}
	gi := argmax(g)
	f.Gender, f.GenderProb = a.gender.Info.ClassNames[gi], g[gi]
	f.AgeGroup = a.age.Info.ClassNames[argmax(age)]
	for i, name := range a.age.Info.ClassNames {
		f.AgeProbs[name] = age[i]
	}
	return f
}

// batcher gathers requests into batches of up to MaxBatch faces and runs
// them. A request is never split, so a single image with more faces than
// MaxBatch runs as one (larger) batch.
func (a *Analyzer) batcher() {
	defer close(a.done)
	for {
		var batch []*request
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
		case <-a.closing:
			return
		}
		n := len(batch[0].faces)
		timer := time.NewTimer(batchWait)
	gather:
		for n < a.opts.MaxBatch {
			select {
			case r := <-a.reqs:
				batch = append(batch, r)
				n += len(r.faces)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		a.run(batch)
	}
}

// run classifies the faces of a batch of requests and wakes their callers.
func (a *Analyzer) run(batch []*request) {
	defer func() {
		if p := recover(); p != nil {
			for _, r := range batch {
				r.err = fmt.Errorf("agegender: inference failed: %v", p)
			}
		}
		for _, r := range batch {
			close(r.done)
		}
	}()
	var crops []image.Image
	for _, r := range batch {
		crops = append(crops, r.faces...)
	}
	g, age, err := a.probs(crops)
	for _, r := range batch {
		if err != nil {
			r.err = err
			continue
		}
		r.probs = make([][2][]float32, len(r.faces))
		for i := range r.faces {
			r.probs[i] = [2][]float32{g[i], age[i]}
		}
		g, age = g[len(r.faces):], age[len(r.faces):]
	}
}

// jointFace turns a joint net's probabilities into a Face.
func jointFace(p []float32) Face {
	g, years := model.SplitJoint(p)
	mean, std, groups := model.AgeEstimate(years)
	f := Face{AgeProbs: make(AgeGroupProbs, len(groups)), Age: mean, AgeStd: std}
	gi := argmax(g)
	f.Gender, f.GenderProb = data.TaskGender.ClassNames()[gi], g[gi]
	f.AgeGroup = data.AgeGroupNames[argmax(groups[:])]
	for i, name := range data.AgeGroupNames {
		f.AgeProbs[name] = groups[i]
	}
	return f
}

// probs runs the networks on crops (the joint net: its outputs as gender).
func (a *Analyzer) probs(crops []image.Image) (gender, age [][]float32, err error) {
	if a.age == nil {
		pix := make([][]uint8, len(crops))
		for i, c := range crops {
			pix[i] = predict.Resized(a.gender, c)
		}
		gender, err = predict.Probs(a.gender, pix, a.mode)
		return gender, make([][]float32, len(crops)), err
	}
	gpix := make([][]uint8, len(crops))
	apix := gpix
	sameSize := a.gender.Info.Resize == a.age.Info.Resize
	if !sameSize {
		apix = make([][]uint8, len(crops))
	}
	for i, c := range crops {
		gpix[i] = predict.Resized(a.gender, c)
		if !sameSize {
			apix[i] = predict.Resized(a.age, c)
		}
	}
	if gender, err = predict.Probs(a.gender, gpix, a.mode); err != nil {
		return nil, nil, err
	}
	if age, err = predict.Probs(a.age, apix, a.mode); err != nil {
		return nil, nil, err
	}
	return gender, age, nil
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

// percent writes a probability as a whole percentage, never rounding one
// short of certainty up to 100%.
func percent(p float32) string {
	if p > 0.99 && p < 1 {
		return ">99%"
	}
	return fmt.Sprintf("%.0f%%", 100*p)
}

// Annotate returns a copy of img with each face's box drawn and labelled
// with its index, gender and age group, for people to check results.
func Annotate(img image.Image, faces []Face) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	// Lines thick enough to see on large photos, thin on small ones.
	th := max(2, min(b.Dx(), b.Dy())/300)
	for _, f := range faces {
		r := f.Box.Sub(b.Min)
		c := boxColor(f.Gender)
		fillRect(dst, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+th), c)
		fillRect(dst, image.Rect(r.Min.X, r.Max.Y-th, r.Max.X, r.Max.Y), c)
		fillRect(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+th, r.Max.Y), c)
		fillRect(dst, image.Rect(r.Max.X-th, r.Min.Y, r.Max.X, r.Max.Y), c)
		label := fmt.Sprintf("#%d %s %s %s", f.Index, f.Gender, percent(f.GenderProb), f.AgeGroup)
		if f.HasAge() {
			label += fmt.Sprintf(" %.0f±%.0fy", f.Age, f.AgeStd)
		}
		face := basicfont.Face7x13
		w := font.MeasureString(face, label).Ceil() + 4
		h := face.Metrics().Height.Ceil() + 2
		// Above the box, or inside its top edge when there is no room.
		y := r.Min.Y - h
		if y < 0 {
			y = max(0, r.Min.Y)
		}
		x := max(0, r.Min.X)
		fillRect(dst, image.Rect(x, y, x+w, y+h), c)
		d := font.Drawer{
			Dst:  dst,
			Src:  image.White,
			Face: face,
			Dot:  fixed.P(x+2, y+face.Metrics().Ascent.Ceil()+1),
		}
		d.DrawString(label)
	}
	return dst
}

// boxColor tells the genders apart at a glance.
func boxColor(gender string) color.RGBA {
	switch gender {
	case "f", "female":
		return color.RGBA{200, 30, 120, 255}
	case "m", "male":
		return color.RGBA{20, 100, 220, 255}
	}
	return color.RGBA{0, 160, 0, 255}
}

func fillRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(dst, r.Intersect(dst.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}
