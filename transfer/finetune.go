package transfer

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/interop/tfjs"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// cutActivations runs the backbone once over samples and returns, as
// rows, the activations at Backbone.Cut (flattened), with the features
// at Backbone.TuneFeature in More[0].
func cutActivations(o *Options, ext **Extractor, split string, samples []data.Sample) (Features, int, time.Duration, error) {
	bb := o.Backbone
	if *ext == nil || len((*ext).outputs) != 2 {
		e, err := NewExtractor(o.Backend, o.ModelsDir, bb, bb.Cut, bb.TuneFeature)
		if err != nil {
			return Features{}, 0, 0, err
		}
		*ext = e
	}
	key := fmt.Sprintf("%s/%s/%s/%x", bb.Name, bb.Cut, split, cacheKey(bb, samples))
	if f, ok := o.Activations[key]; ok {
		logf(o.Log, "%s %s: %s activations of %d images from memory", bb.Name, split, bb.Cut, len(f.Rows))
		return f, 0, 0, nil
	}
	f, skipped, per, err := (*ext).ExtractSamples(samples, o.Workers)
	if err != nil {
		return f, 0, 0, err
	}
	if o.Activations != nil {
		o.Activations[key] = f
	}
	want := 1
	for _, d := range bb.CutShape {
		want *= d
	}
	if len(f.Rows) > 0 && len(f.Rows[0]) != want {
		return f, 0, 0, fmt.Errorf("transfer: %s: %s gives %d values per image, want %v", bb.Name, bb.Cut, len(f.Rows[0]), bb.CutShape)
	}
	logf(o.Log, "%s %s: extracted %s activations of %d images (%d undecodable), %v per image", bb.Name, split, bb.Cut, len(f.Rows), skipped, per)
	return f, len(f.Rows), per, nil
}

// lastBlock returns the graph from the Cut activations (batch rows) to the
// backbone's TuneFeature, with the weights of the last block as trainable
// variables, followed by standardisation with mean and std.
func lastBlock(m *tfjs.Graph, bb Backbone, mean, std []float32) func(s *mlx.Scope, x *Node) *Node {
	return func(s *mlx.Scope, x *Node) *Node {
		g := x.Graph()
		a := Reshape(x, append([]int{x.Shape().Dimensions[0]}, bb.CutShape...)...)
		out, err := m.BuildWith(g, map[string]*Node{bb.Cut: a}, []string{bb.TuneFeature}, tfjs.BuildOptions{
			Scope:        s.In("backbone"),
			AsVariables:  func(w string) bool { return strings.HasPrefix(w, bb.LastBlock) },
			RelativeStep: relativeStep,
		})
		if err != nil {
			panic(err)
		}
		f := Reshape(out[0], -1, len(mean))
		mu := Reshape(Const(g, mean), 1, len(mean))
		sd := Reshape(Const(g, std), 1, len(std))
		return Div(Sub(f, mu), sd)
	}
}

// relativeStep scales the last block's updates (tfjs.BuildOptions.RelativeStep):
// with Adam at 3e-4, each weight tensor moves by about 3e-5 of its RMS per
// step, where training the raw weights at that rate diverged within an
// epoch (the block's weights are small, and the features it feeds the head
// are standardised by their small deviations).
const relativeStep = 0.1

// blockChange compares the weights of the last block (pretrained weight
// plus the trained offset, see relativeStep) with the pretrained weights of
// m: how many tensors were tuned, and the largest relative change.
func blockChange(store *mlx.Store, m *tfjs.Graph) (n int, maxRel float64) {
	byVar := map[string]*tfjs.Tensor{}
	for name, w := range m.Weights {
		byVar[tfjs.VariableName(name)] = w
	}
	for v := range store.IterVariables() {
		w0, ok := byVar[v.Name()]
		if !ok || !strings.Contains(v.Path(), "/backbone") {
			continue
		}
		off := tensors.MustCopyFlatData[float32](v.MustValue())
		if len(off) != len(w0.F32) {
			continue
		}
		scale := relativeStep * tfjs.RMS(w0.F32)
		var d, base float64
		for i, x := range off {
			e := scale * float64(x)
			d += e * e
			base += float64(w0.F32[i]) * float64(w0.F32[i])
		}
		n++
		if base > 0 {
			maxRel = max(maxRel, math.Sqrt(d/base))
		}
	}
	return n, maxRel
}
