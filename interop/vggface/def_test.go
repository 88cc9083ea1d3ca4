package vggface

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/interop/tfjs"
)

// TestReleasedDefinition checks the released deploy definition (a copy in
// interop/caffe/testdata) against the shapes of the released weights,
// which are not on this machine: only their shapes are needed.
func TestReleasedDefinition(t *testing.T) {
	widths := [5]int{64, 128, 256, 512, 512}
	g := &tfjs.Graph{Path: "VGG_FACE.caffemodel", Weights: map[string]*tfjs.Tensor{}}
	cin := 3
	for b, n := range Blocks {
		for j := range n {
			name := fmt.Sprintf("conv%d_%d/kernel", b+1, j+1)
			g.Weights[name] = &tfjs.Tensor{Name: name, Shape: []int{3, 3, cin, widths[b]}}
			cin = widths[b]
		}
	}
	g.Weights["fc6/bias"] = &tfjs.Tensor{Shape: []int{4096}}
	g.Weights["fc7/bias"] = &tfjs.Tensor{Shape: []int{4096}}
	g.Weights["flatten/shape"] = &tfjs.Tensor{DType: tfjs.Int32, Shape: []int{2}, I32: []int32{-1, 7 * 7 * 512}}
	geo, err := GeometryOf(g)
	if err != nil {
		t.Fatal(err)
	}
	if geo.Side != Size || geo.Dim != 4096 || fmt.Sprint(geo.Pool5) != "[7 7 512]" {
		t.Errorf("geometry %+v, want side 224, pool5 [7 7 512], dim 4096", geo)
	}
	raw, err := os.ReadFile("../caffe/testdata/vgg_face_deploy.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"", "", ""},
		{"num_output: 4096", "num_output: 2048", `layer "fc6" has 2048 outputs`},
		{"pad: 1", "pad: 0", `layer "conv1_1": 3×3 kernel, stride 1×1, pad 0×0`},
		{"pool: MAX", "pool: AVE", `layer "pool1": AVE`},
	} {
		def, err := caffe.ParseNet(strings.NewReader(strings.Replace(string(raw), c.old, c.new, 1)))
		if err != nil {
			t.Fatal(err)
		}
		err = checkDef(def, g)
		if c.want == "" && err != nil {
			t.Errorf("released definition: %v", err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s → %s: error %v, want one containing %q", c.old, c.new, err, c.want)
		}
	}
}
