package tfjs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

const fuzzModel = `{"format":"graph-model","modelTopology":{"node":[
{"name":"x","op":"Placeholder","attr":{"dtype":{"type":"DT_FLOAT"},"shape":{"shape":{"dim":[{"size":"1"},{"size":"4"},{"size":"4"},{"size":"1"}]}}}},
{"name":"w","op":"Const","attr":{"dtype":{"type":"DT_FLOAT"},"value":{"tensor":{"dtype":"DT_FLOAT","tensorShape":{"dim":[{"size":"2"},{"size":"2"},{"size":"1"},{"size":"1"}]}}}}},
{"name":"y","op":"Conv2D","input":["x","w"],"attr":{"strides":{"list":{"i":["1","1","1","1"]}},"padding":{"s":"U0FNRQ=="},"data_format":{"s":"TkhXQw=="}}},
{"name":"z","op":"Relu","input":["y"]}]},
"weightsManifest":[{"paths":["w.bin"],"weights":[{"name":"w","shape":[2,2,1,1],"dtype":"float32"}]}]}`

// FuzzLoadAndBuild writes arbitrary model.json contents next to a small
// weight shard and loads and builds them: any input gives a graph or an
// error naming the problem — never a panic, a hang or a huge allocation.
func FuzzLoadAndBuild(f *testing.F) {
	f.Add([]byte(fuzzModel))
	f.Add([]byte(`{"modelTopology":{"node":[]},"weightsManifest":[]}`))
	f.Add([]byte(`{"weightsManifest":[{"paths":["../../etc/passwd"],"weights":[{"name":"w","shape":[1000000000],"dtype":"float32"}]}]}`))
	f.Add([]byte(`{"weightsManifest":[{"paths":["w.bin"],"weights":[{"name":"w","shape":[4],"dtype":"uint8","quantization":{"dtype":"uint8","min":-1,"scale":0.1}}]}]}`))
	be, err := compute.NewWithConfig("go")
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		p := filepath.Join(dir, "model.json")
		if err := os.WriteFile(p, js, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(p)
		if err != nil || len(m.Outputs) == 0 || len(m.Placeholders) != 1 {
			return
		}
		g := graph.NewGraph(be, "fuzz")
		x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 4, 4, 1))
		m.Build(g, map[string]*graph.Node{m.Placeholders[0].Name: x}, m.Outputs...) // error or graph; never a panic
	})
}

// TestFuzzSeedBuilds keeps the fuzz seed meaningful: it is a valid model.
func TestFuzzSeedBuilds(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
	p := filepath.Join(dir, "model.json")
	os.WriteFile(p, []byte(fuzzModel), 0o644)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	be, _ := compute.NewWithConfig("go")
	g := graph.NewGraph(be, "seed")
	x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 4, 4, 1))
	out, err := m.Build(g, map[string]*graph.Node{m.Placeholders[0].Name: x}, m.Outputs...)
	if err != nil || len(out) != 1 {
		t.Fatalf("seed model: outputs %v, %d nodes, err %v", m.Outputs, len(out), err)
	}
}
