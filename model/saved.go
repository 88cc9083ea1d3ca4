package model

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// Scope is the store scope that holds a network's weights. Everything
// outside it (optimiser state, counters) belongs to training.
const Scope = "net"

// Info describes a trained model: what it computes and how its inputs
// must be prepared. It is stored as the model file's metadata (JSON).
type Info struct {
	Config Config `json:"config"`
	// Task is what the model tells (data.TaskGender, TaskAge or
	// TaskGenderAge, stored by name); ClassNames spells the outputs.
	Task       data.Task `json:"task"`
	ClassNames []string  `json:"class_names"`
	// Spec is how an input is made from a face image: framing, resize,
	// crop (Config.Input), mean and channel order. Its fields are stored
	// at the top level of the metadata ("resize", "mean", ...), where
	// files written before it existed have them too; such a file has no
	// "crop", which Load takes from Config.Input.
	prep.Spec
	// Temperature rescales logits before softmax (calibration); 0 means 1.
	Temperature float64 `json:"temperature,omitempty"`
	// AgeTemperature rescales the age head of a HeadsGenderAge net (its
	// gender head uses Temperature); 0 means Temperature.
	AgeTemperature float64 `json:"age_temperature,omitempty"`
	// Training describes how the weights were obtained (free-form, for people).
	Training json.RawMessage `json:"training,omitempty"`
}

// Model is a trained network: its description and weights.
type Model struct {
	Info    Info
	Weights []modelfile.Tensor // float32, names relative to Scope

	// held, for a model read by Load or Decode, are the GoMLX tensors
	// whose memory the Weights' F32 slices are: NewPredictor hands them to
	// its store instead of copying the weights (tens of megabytes for a
	// trunk net, whose first touch costs more than the copy).
	held *heldTensors
}

// heldTensors are tensors that back a model's weights, each taken by the
// first NewPredictor that uses it.
type heldTensors struct {
	mu sync.Mutex
	t  map[string]*tensors.Tensor
}

// newHeld returns the tensors' holder and a modelfile.Alloc that decodes
// float weights into new tensors it holds.
func newHeld() (*heldTensors, modelfile.Alloc) {
	h := &heldTensors{t: map[string]*tensors.Tensor{}}
	return h, func(name string, dims []int) []float32 {
		t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
		var flat []float32
		tensors.MustMutableFlatData(t, func(f []float32) { flat = f })
		h.t[name] = t
		return flat
	}
}

// take returns, and forgets, the held tensor whose memory w's values
// are; nil when there is none (w's F32 was replaced, or taken before).
func (h *heldTensors) take(w modelfile.Tensor) *tensors.Tensor {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.t[w.Name]
	if t == nil {
		return nil
	}
	same := false
	tensors.MustConstFlatData(t, func(f []float32) {
		same = len(f) == len(w.F32) && (len(f) == 0 || &f[0] == &w.F32[0])
	})
	if !same || !slices.Equal(t.Shape().Dimensions, w.Dims) {
		return nil
	}
	delete(h.t, w.Name)
	return t
}

// hold keeps the tensors of h that back m's weights (a checkpoint's other
// tensors are dropped).
func (m *Model) hold(h *heldTensors) {
	keep := make(map[string]*tensors.Tensor, len(m.Weights))
	for _, w := range m.Weights {
		if t := h.t[w.Name]; t != nil {
			keep[w.Name] = t
		}
	}
	h.t = keep
	m.held = h
}

// Load reads a model file written by Save (or a training checkpoint, whose
// network weights it extracts).
func Load(path string) (*Model, error) {
	h, alloc := newHeld()
	meta, ts, err := modelfile.ReadWith(path, alloc)
	if err != nil {
		return nil, err
	}
	m, err := FromFile(path, meta, ts)
	if err != nil {
		return nil, err
	}
	m.hold(h)
	return m, nil
}

// Decode reads a model file of size bytes from r, like Load; name names
// it in errors.
func Decode(name string, r io.Reader, size int64) (*Model, error) {
	h, alloc := newHeld()
	meta, ts, err := modelfile.DecodeFrom(r, size, alloc)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", name, err)
	}
	m, err := FromFile(name, meta, ts)
	if err != nil {
		return nil, err
	}
	m.hold(h)
	return m, nil
}

// FromFile builds a Model from a decoded model file.
func FromFile(path string, meta modelfile.Meta, ts []modelfile.Tensor) (*Model, error) {
	var info Info
	if err := json.Unmarshal(meta.Payload, &info); err != nil {
		return nil, fmt.Errorf("model: %s: metadata: %v", path, err)
	}
	if err := info.Config.Validate(); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if len(info.ClassNames) != info.Config.Classes {
		return nil, fmt.Errorf("model: %s: %d class names for %d classes", path, len(info.ClassNames), info.Config.Classes)
	}
	if info.Crop == 0 {
		info.Crop = info.Config.Input
	}
	if info.Crop != info.Config.Input {
		return nil, fmt.Errorf("model: %s: crop %d differs from the network's input %d", path, info.Crop, info.Config.Input)
	}
	if info.Resize < info.Crop {
		return nil, fmt.Errorf("model: %s: resize %d smaller than the input crop %d", path, info.Resize, info.Crop)
	}
	m := &Model{Info: info}
	prefix := "/" + Scope + "/"
	for _, t := range ts {
		if !strings.HasPrefix(t.Name, prefix) || t.F32 == nil {
			continue
		}
		for _, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("model: %s: weight %s holds NaN or Inf; the training diverged", path, t.Name)
			}
		}
		m.Weights = append(m.Weights, t)
	}
	if len(m.Weights) == 0 {
		return nil, fmt.Errorf("model: %s holds no network weights", path)
	}
	if t := info.Config.Trunk; t != nil {
		if err := t.check(path, m.Weights); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Save writes the model; half stores the weights as float16.
func (m *Model) Save(path string, half bool) error {
	payload, err := json.Marshal(m.Info)
	if err != nil {
		return err
	}
	ts := make([]modelfile.Tensor, len(m.Weights))
	for i, t := range m.Weights {
		t.Store = modelfile.Float32
		if half {
			t.Store = modelfile.Float16
		}
		ts[i] = t
	}
	return modelfile.Write(path, modelfile.Meta{Kind: "model", Payload: payload}, ts)
}

// NumParams counts the weights.
func (m *Model) NumParams() int {
	n := 0
	for _, t := range m.Weights {
		n += t.Elements()
	}
	return n
}

// LoadInto creates the model's variables in store (which must not hold
// them yet).
func (m *Model) LoadInto(store *mlx.Store) error { return m.loadInto(store, false) }

// loadInto creates m's weights as store's variables; with share, a weight
// still backed by a tensor Load or Decode made (see heldTensors) is that
// tensor, not a copy, so the store must never change it.
func (m *Model) loadInto(store *mlx.Store, share bool) error {
	for _, w := range m.Weights {
		var t *tensors.Tensor
		if share {
			t = m.held.take(w)
		}
		if t == nil {
			t = tensors.FromFlatDataAndDimensions(w.F32, w.Dims...)
		}
		if _, err := store.CreateVariable(w.Name, t); err != nil {
			return fmt.Errorf("model: loading %s: %w", w.Name, err)
		}
	}
	return nil
}

// Predictor runs a model on batches of prepared images. It is safe for
// concurrent use; calls are serialised on the backend. It does not gather
// the work of concurrent callers into batches (predict.Runner, the
// project's one batching layer, does): it only splits a call into, and pads
// it to, the few batch sizes it compiles, a detail of running fixed-shape
// graphs.
type Predictor struct {
	Info  Info
	mu    sync.Mutex
	exec  *mlx.Exec
	store *mlx.Store
}

// NewPredictor compiles m for inference on backend. The Predictor shares
// the memory of the weights of a model read by Load or Decode (the first
// Predictor of it does): they must not be changed while it is in use.
func NewPredictor(backend compute.Backend, m *Model, impl ops.Impl) (*Predictor, error) {
	// The weights never change: as graph constants a runtime can pre-pack
	// them (ONNX Runtime runs a trunk net 3× faster so; see Trunk.build).
	store := mlx.NewStore().WithVariableAsConst(true)
	if err := m.loadInto(store, true); err != nil {
		return nil, err
	}
	cfg := m.Info.Config
	cfg.Impl = impl
	fn := func(s *mlx.Scope, x *Node) *Node {
		return Probabilities(cfg, Logits(s.In(Scope), cfg, x), m.Info.Temperature, m.Info.AgeTemperature)
	}
	exec, err := mlx.NewExec(backend, store, fn)
	if err != nil {
		return nil, err
	}
	return &Predictor{Info: m.Info, exec: exec, store: store}, nil
}

// batchSizes are the batch shapes compiled; a request is padded to the
// next one, so at most this many graphs are ever compiled.
var batchSizes = []int{1, 2, 4, 10, 16, 32, 64}

// maxTrunkBatch bounds the batches of a TrunkNet net, whose inputs are
// large (224×224) and whose activations dominate memory.
const maxTrunkBatch = 4

// Close releases the compiled graphs' backend memory, once a Warm in
// progress has finished; p must not be used afterwards.
func (p *Predictor) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exec.Finalize()
}

// batchFor is the compiled batch size the first images of a call with n
// images run in: the smallest that holds them all, or the largest.
func (p *Predictor) batchFor(n int) int {
	largest := batchSizes[len(batchSizes)-1]
	if p.Info.Config.Net == TrunkNet {
		// ONNX Runtime keeps a buffer per op and image: a 224-px trunk
		// at batch 16 holds about 3 GB, at 64 it would hold 11 GB.
		largest = maxTrunkBatch
	}
	for _, s := range batchSizes {
		if s >= n && s <= largest {
			return s
		}
	}
	return largest
}

// Warm compiles the graph a call of Probs with n images starts with,
// without running it, so that the call does not wait for the compilation
// (a process can compile while it does other work, such as decoding a
// photo and finding its faces). Probs waits for a Warm in progress.
func (p *Predictor) Warm(n int) error {
	in := p.Info.Config.Input
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.exec.Compile(shapes.Make(dtypes.Float32, p.batchFor(max(n, 1)), in, in, 3)); err != nil {
		return fmt.Errorf("model: compiling: %w", err)
	}
	return nil
}

// Probs returns class probabilities for n images packed in pix
// (n × Input × Input × 3 floats, NHWC).
func (p *Predictor) Probs(pix []float32, n int) ([][]float32, error) {
	in := p.Info.Config.Input
	per := in * in * 3
	if len(pix) != n*per {
		return nil, fmt.Errorf("model: %d floats for %d images of %d×%d×3", len(pix), n, in, in)
	}
	out := make([][]float32, 0, n)
	for start := 0; start < n; {
		b := p.batchFor(n - start)
		k := min(b, n-start)
		buf := make([]float32, b*per)
		copy(buf, pix[start*per:(start+k)*per])
		t := tensors.FromFlatDataAndDimensions(buf, b, in, in, 3)
		p.mu.Lock()
		res, err := p.exec.Exec(t)
		p.mu.Unlock()
		// The input's backend copy lives in C memory on ONNX Runtime, which
		// Go's collector does not see: free it now, not at some later GC.
		t.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("model: inference: %w", err)
		}
		flat := tensors.MustCopyFlatData[float32](res[0])
		res[0].FinalizeAll()
		c := p.Info.Config.Classes
		for i := 0; i < k; i++ {
			out = append(out, flat[i*c:(i+1)*c])
		}
		start += k
	}
	return out, nil
}
