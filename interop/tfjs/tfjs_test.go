package tfjs

import (
	"encoding/binary"
	"encoding/json"
	"github.com/agegender/agegender/internal/datatest"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/gomlx/core/tensors"
)

// modelsDir is ../shared/models/tfjs (the test skips if it is absent).
func modelsDir(t *testing.T) string { return datatest.Shared(t, "models/tfjs") }

// refCase describes one model checked against TensorFlow.js.
type refCase struct {
	file    string
	input   string
	size    int
	lo, hi  float32 // range of the random input pixels
	outputs []string
}

var refCases = []refCase{
	{"mobilefacenet.json", "img_inputs", 112, -1, 1, []string{"embeddings"}},
	{"faceres.json", "input_1", 224, 0, 1, []string{"gender_pred/Sigmoid", "age_pred/Softmax", "global_pooling/Mean"}},
}

func TestLoadModels(t *testing.T) {
	dir := modelsDir(t)
	supported := map[string]bool{}
	for _, op := range SupportedOps() {
		supported[op] = true
	}
	for _, c := range refCases {
		m, err := Load(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Placeholders) != 1 || m.Placeholders[0].Name != c.input {
			t.Errorf("%s: placeholders %+v, want %s", c.file, m.Placeholders, c.input)
		}
		for _, n := range m.Nodes {
			if !supported[n.Op] {
				t.Errorf("%s: node %s uses unsupported op %s", c.file, n.Name, n.Op)
			}
			if n.Op == "Const" && m.Weights[n.Name] == nil {
				t.Errorf("%s: Const %s has no weight", c.file, n.Name)
			}
		}
		t.Logf("%s: %d nodes, %d weights, outputs %v", c.file, len(m.Nodes), len(m.Weights), m.Outputs)
	}
}

func TestSamePadding(t *testing.T) {
	for _, c := range []struct{ in, k, s, d, b, a int }{
		{112, 3, 2, 1, 0, 1}, {7, 7, 1, 1, 3, 3}, {224, 3, 2, 1, 0, 1}, {5, 3, 1, 2, 2, 2}, {4, 1, 2, 1, 0, 0},
	} {
		b, a := SamePadding(c.in, c.k, c.s, c.d)
		if b != c.b || a != c.a {
			t.Errorf("SamePadding(%d,%d,%d,%d) = %d,%d, want %d,%d", c.in, c.k, c.s, c.d, b, a, c.b, c.a)
		}
	}
}

// writeModel writes a one-Const model for the hostile-file tests.
func writeModel(t *testing.T, manifest string, shard []byte) string {
	t.Helper()
	dir := t.TempDir()
	js := `{"format":"graph-model","modelTopology":{"node":[{"name":"w","op":"Const"}]},"weightsManifest":` + manifest + `}`
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if shard != nil {
		if err := os.WriteFile(filepath.Join(dir, "w.bin"), shard, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "model.json")
}

func TestLoadQuantisedAndHostile(t *testing.T) {
	// uint8 quantisation: v = q*scale + min.
	p := writeModel(t, `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","min":-1,"scale":0.5}}]}]`, []byte{0, 2, 4})
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Weights["w"].F32; len(got) != 3 || got[0] != -1 || got[1] != 0 || got[2] != 1 {
		t.Errorf("uint8 dequantised to %v, want [-1 0 1]", got)
	}
	u16 := make([]byte, 4)
	binary.LittleEndian.PutUint16(u16, 1000)
	binary.LittleEndian.PutUint16(u16[2:], 3)
	p = writeModel(t, `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[2],"dtype":"float32","quantization":{"dtype":"uint16","min":0,"scale":0.25}}]}]`, u16)
	if m, err = Load(p); err != nil {
		t.Fatal(err)
	} else if got := m.Weights["w"].F32; got[0] != 250 || got[1] != 0.75 {
		t.Errorf("uint16 dequantised to %v, want [250 0.75]", got)
	}

	for _, c := range []struct{ name, manifest, want string }{
		{"short shard", `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[4],"dtype":"float32"}]}]`, "hold 3 bytes but the manifest describes 16"},
		{"huge shape", `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[100000,100000,100000],"dtype":"float32"}]}]`, "more than"},
		{"negative dim", `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[-3],"dtype":"float32"}]}]`, "dimension -3"},
		{"escape", `[{"paths":["../w.bin"],"weights":[{"name":"w","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","min":0,"scale":1}}]}]`, "leaves the model directory"},
		{"absolute", `[{"paths":["/etc/passwd"],"weights":[]}]`, "must be relative"},
		{"bad quant", `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[3],"dtype":"float32","quantization":{"dtype":"int4"}}]}]`, "unsupported quantisation"},
		{"string dtype", `[{"paths":["w.bin"],"weights":[{"name":"w","shape":[3],"dtype":"string"}]}]`, "only float32 and int32"},
	} {
		_, err := Load(writeModel(t, c.manifest, []byte{1, 2, 3}))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "model.json") {
			t.Errorf("%s: error %v, want one naming model.json and containing %q", c.name, err, c.want)
		}
	}
}

func TestUnsupportedOp(t *testing.T) {
	dir := t.TempDir()
	js := `{"format":"graph-model","modelTopology":{"node":[{"name":"x","op":"Placeholder"},{"name":"y","op":"Erf","input":["x"]}]},"weightsManifest":[]}`
	p := filepath.Join(dir, "model.json")
	if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.NewExec(b, "", "y")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Call(tensors.FromFlatDataAndDimensions([]float32{1, 2}, 2))
	if err == nil || !strings.Contains(err.Error(), `"y"`) || !strings.Contains(err.Error(), "Erf") {
		t.Errorf("error %v, want one naming node \"y\" and op Erf", err)
	}
}

// nodeReference runs testdata/run_tfjs.js on x and returns the outputs.
func nodeReference(t *testing.T, modelPath string, c refCase, x []float32, shape []int) map[string][]float32 {
	t.Helper()
	tmp := t.TempDir()
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	xf := filepath.Join(tmp, "x.f32")
	if err := os.WriteFile(xf, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	req := map[string]any{
		"model":   modelPath,
		"inputs":  map[string]any{c.input: map[string]any{"shape": shape, "file": xf}},
		"outputs": c.outputs,
		"result":  filepath.Join(tmp, "out.json"),
	}
	rb, _ := json.Marshal(req)
	rf := filepath.Join(tmp, "req.json")
	if err := os.WriteFile(rf, rb, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "run_tfjs.js", rf)
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node run_tfjs.js: %v\n%s", err, out)
	}
	var res struct {
		Version string
		Outputs map[string]struct {
			Shape []int
			Data  []float64
		}
	}
	b, err := os.ReadFile(req["result"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	got := map[string][]float32{}
	for k, v := range res.Outputs {
		f := make([]float32, len(v.Data))
		for i, d := range v.Data {
			f[i] = float32(d)
		}
		got[k] = f
	}
	t.Logf("tfjs %s", res.Version)
	return got
}

// TestMatchesTensorFlowJS runs both pretrained models on two random inputs
// with the Go importer and with @tensorflow/tfjs (CPU backend, in Node) and
// requires max|go-tfjs| / max|tfjs| <= 1e-4 for every output.
//
// It needs node and the pinned tfjs package:
//
//	npm ci --prefix interop/tfjs/testdata
func TestMatchesTensorFlowJS(t *testing.T) {
	dir := modelsDir(t)
	if _, err := exec.LookPath("node"); err != nil {
		datatest.Missing(t, "node not found in PATH (the TF.js reference); install Node.js and run: npm ci --prefix interop/tfjs/testdata")
	}
	if _, err := os.Stat("testdata/node_modules/@tensorflow/tfjs/package.json"); err != nil {
		datatest.Missing(t, "testdata/node_modules (the TF.js reference) missing; run: npm ci --prefix interop/tfjs/testdata")
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range refCases {
		t.Run(strings.TrimSuffix(c.file, ".json"), func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 2
			shape := []int{batch, c.size, c.size, 3}
			x := make([]float32, batch*c.size*c.size*3)
			rng := rand.New(rand.NewPCG(1, uint64(c.size)))
			for i := range x {
				x[i] = c.lo + (c.hi-c.lo)*rng.Float32()
			}
			want := nodeReference(t, path, c, x, shape)
			e, err := m.NewExec(b, c.input, c.outputs...)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			outs, err := e.Call(tensors.FromFlatDataAndDimensions(x, shape...))
			if err != nil {
				t.Fatal(err)
			}
			first := time.Since(start)
			start = time.Now()
			if _, err := e.Call(tensors.FromFlatDataAndDimensions(x, shape...)); err != nil {
				t.Fatal(err)
			}
			t.Logf("Go (%s backend): %v for %d images with compilation, then %v", b.Name(), first, batch, time.Since(start))
			for i, name := range c.outputs {
				got := tensors.MustCopyFlatData[float32](outs[i])
				ref := want[name]
				if len(got) != len(ref) {
					t.Fatalf("%s: %d values, tfjs gives %d", name, len(got), len(ref))
				}
				var maxDiff, maxRef float64
				for j := range got {
					maxDiff = max(maxDiff, math.Abs(float64(got[j]-ref[j])))
					maxRef = max(maxRef, math.Abs(float64(ref[j])))
				}
				rel := maxDiff / max(maxRef, 1e-12)
				t.Logf("%s: max abs diff %.3g, max |tfjs| %.3g, relative %.3g", name, maxDiff, maxRef, rel)
				if rel > 1e-4 {
					t.Errorf("%s: relative error %.3g > 1e-4", name, rel)
				}
			}
		})
	}
}
