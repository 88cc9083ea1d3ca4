package tfjs

import (
	"os"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/gomlx/core/tensors"
)

func ptr[T any](v T) *T { return &v }

// TestPadMaxPool runs Pad then a SAME 2×2 stride-2 MaxPool (BlazeFace's
// pair) on a 1×3×3×1 input and checks every output against the
// definitions: Pad adds zeros, SAME pads the odd last row and column and
// never picks the padding.
func TestPadMaxPool(t *testing.T) {
	m := &Graph{Path: "test", Weights: map[string]*Tensor{
		"pads": {Name: "pads", DType: Int32, Shape: []int{4, 2}, I32: []int32{0, 0, 0, 0, 0, 0, 0, 1}},
	}}
	ints := func(v ...int64) Attr { return Attr{List: &AttrList{I: v}} }
	m.Nodes = []*Node{
		{Name: "x", Op: "Placeholder", Attr: map[string]Attr{"shape": {Shape: []int{-1, 3, 3, 1}}}},
		{Name: "pads", Op: "Const"},
		{Name: "pad", Op: "Pad", Inputs: []string{"x", "pads"}},
		{Name: "pool", Op: "MaxPool", Inputs: []string{"pad"}, Attr: map[string]Attr{
			"ksize": ints(1, 2, 2, 1), "strides": ints(1, 2, 2, 1), "padding": {S: ptr("SAME")}}},
	}
	m.byName = map[string]*Node{}
	for _, n := range m.Nodes {
		m.byName[n.Name] = n
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	e, err := m.NewExec(b, "x", "pool")
	if err != nil {
		t.Fatal(err)
	}
	// All negative, so a zero from padding would win if it leaked.
	x := []float32{-1, -2, -3, -4, -5, -6, -7, -8, -9}
	outs, err := e.Call(tensors.FromFlatDataAndDimensions(x, 1, 3, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](outs[0])
	if d := outs[0].Shape().Dimensions; len(d) != 4 || d[1] != 2 || d[2] != 2 || d[3] != 2 {
		t.Fatalf("shape %v, want [1 2 2 2]", d)
	}
	// Channel 0 is x pooled, channel 1 the zero channel Pad added.
	want := []float32{-1, 0, -3, 0, -7, 0, -9, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestLoadFS loads a model through an fs.FS, as go:embed provides it, and
// gets the same weights as Load.
func TestLoadFS(t *testing.T) {
	dir := modelsDir(t)
	a, err := Load(dir + "/blazeface-front.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadFS(os.DirFS(dir), "blazeface-front.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Weights) != len(b.Weights) || len(a.Nodes) != len(b.Nodes) {
		t.Fatalf("LoadFS: %d weights, %d nodes; Load: %d, %d", len(b.Weights), len(b.Nodes), len(a.Weights), len(a.Nodes))
	}
	for name, w := range a.Weights {
		v := b.Weights[name]
		if v == nil || len(v.F32) != len(w.F32) || len(v.I32) != len(w.I32) {
			t.Fatalf("weight %s differs", name)
		}
	}
	if _, err := LoadFS(os.DirFS(dir), "nope.json"); err == nil {
		t.Error("LoadFS of a missing file succeeded")
	}
}
