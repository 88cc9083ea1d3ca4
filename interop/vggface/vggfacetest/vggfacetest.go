// Package vggfacetest writes small synthetic nets shaped like VGG-Face
// (VGG-16 with other widths and a smaller input), with random weights, in
// the files of the VGG group's release, for tests of packages that read
// VGG-Face (interop/vggface, model) on machines without the real one.
package vggfacetest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/agegender/agegender/interop/caffe"
	"github.com/agegender/agegender/interop/vggface"
)

// Net describes a synthetic net.
type Net struct {
	// Channels are the widths of the five convolution blocks, FC that of
	// fc6 and fc7, Side the input's side (a multiple of 32).
	Channels [5]int
	FC       int
	Side     int
	// Seed seeds the weights (He-scaled Gaussians, biases N(0, 0.1)).
	Seed uint64
}

// Tiny is a net that runs in milliseconds: 64×64 input (pool5 2×2, so
// fc6 reads a real feature map), 2 to 8 channels, fc6 and fc7 of 16.
var Tiny = Net{Channels: [5]int{2, 4, 4, 8, 8}, FC: 16, Side: 64, Seed: 1}

// Layers returns the net's layers in Caffe's layout (kernels [Cout, Cin,
// 3, 3] on BGR input, inner products [Out, In] on the CHW-flattened
// pool5), with the parameterless ReLU and pooling layers and an fc8 of 3
// outputs, as in a real caffemodel.
func (n Net) Layers() []caffe.Layer {
	rng := rand.New(rand.NewPCG(n.Seed, 7))
	gauss := func(k int, std float64) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	var out []caffe.Layer
	cin := 3
	for b, k := range vggface.Blocks {
		for j := range k {
			c := n.Channels[b]
			fan := cin * 9
			out = append(out,
				caffe.Layer{Name: fmt.Sprintf("conv%d_%d", b+1, j+1), Type: "Convolution", Blobs: []caffe.Blob{
					{Shape: []int{c, cin, 3, 3}, Data: gauss(c*fan, math.Sqrt(2/float64(fan))/scaleFirst(b, j))},
					{Shape: []int{c}, Data: gauss(c, 0.1)}}},
				caffe.Layer{Name: fmt.Sprintf("relu%d_%d", b+1, j+1), Type: "ReLU"})
			cin = c
		}
		out = append(out, caffe.Layer{Name: fmt.Sprintf("pool%d", b+1), Type: "Pooling"})
	}
	h := n.Side / 32
	in := cin * h * h
	for i, name := range []string{"fc6", "fc7", "fc8"} {
		o := n.FC
		if name == "fc8" {
			o = 3
		}
		out = append(out, caffe.Layer{Name: name, Type: "InnerProduct", Blobs: []caffe.Blob{
			{Shape: []int{o, in}, Data: gauss(o*in, math.Sqrt(2/float64(in)))},
			{Shape: []int{o}, Data: gauss(o, 0.1)}}})
		if i < 2 {
			out = append(out, caffe.Layer{Name: fmt.Sprintf("relu%d", i+6), Type: "ReLU"}, caffe.Layer{Name: fmt.Sprintf("drop%d", i+6), Type: "Dropout"})
		}
		in = o
	}
	return out
}

// scaleFirst keeps conv1_1's outputs near unit scale on 0..255 inputs
// minus the mean (about ±100).
func scaleFirst(b, j int) float64 {
	if b == 0 && j == 0 {
		return 60
	}
	return 1
}

// Caffemodel returns layers encoded as a caffemodel (V1 layout, as the
// released VGG_FACE.caffemodel).
func Caffemodel(layers []caffe.Layer) ([]byte, error) {
	var buf bytes.Buffer
	err := caffe.WriteNetParameter(&buf, layers, &caffe.WriteOptions{Name: "VGG_FACE_16_layers", V1: true})
	return buf.Bytes(), err
}

// Deploy returns the net's deploy definition in the release's V1 text
// format.
func (n Net) Deploy() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: \"VGG_FACE_16_layers\"\ninput: \"data\"\ninput_dim: 1\ninput_dim: 3\ninput_dim: %d\ninput_dim: %d\n", n.Side, n.Side)
	for i, k := range vggface.Blocks {
		for j := range k {
			fmt.Fprintf(&b, "layers { name: \"conv%d_%d\" type: CONVOLUTION convolution_param { num_output: %d pad: 1 kernel_size: 3 } }\n", i+1, j+1, n.Channels[i])
			fmt.Fprintf(&b, "layers { name: \"relu%d_%d\" type: RELU }\n", i+1, j+1)
		}
		fmt.Fprintf(&b, "layers { name: \"pool%d\" type: POOLING pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n", i+1)
	}
	for _, l := range []string{"6", "7"} {
		fmt.Fprintf(&b, "layers { name: \"fc%s\" type: INNER_PRODUCT inner_product_param { num_output: %d } }\n", l, n.FC)
		fmt.Fprintf(&b, "layers { name: \"relu%s\" type: RELU }\nlayers { name: \"drop%s\" type: DROPOUT dropout_param { dropout_ratio: 0.5 } }\n", l, l)
	}
	b.WriteString("layers { name: \"fc8\" type: INNER_PRODUCT inner_product_param { num_output: 3 } }\nlayers { name: \"prob\" type: SOFTMAX }\n")
	return b.String()
}

// Write writes the net into dir as the release's VGG_FACE.caffemodel and,
// when deploy is set, VGG_FACE_deploy.prototxt, and returns its layers.
func Write(dir string, n Net, deploy bool) ([]caffe.Layer, error) {
	layers := n.Layers()
	data, err := Caffemodel(layers)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, vggface.WeightsFile), data, 0o644); err != nil {
		return nil, err
	}
	if deploy {
		if err := os.WriteFile(filepath.Join(dir, vggface.DeployFile), []byte(n.Deploy()), 0o644); err != nil {
			return nil, err
		}
	}
	return layers, nil
}
