package model

import (
	"fmt"

	"github.com/agegender/agegender/model/ops"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
)

// VGG-16 in the layout of VGG-Face (Parkhi, Vedaldi & Zisserman 2015),
// whose Caffe release names its layers conv1_1 … conv5_3, fc6, fc7, fc8:
//
//	block 1: conv1_1, conv1_2   64 channels
//	block 2: conv2_1, conv2_2  128 channels
//	block 3: conv3_1 … conv3_3 256 channels
//	block 4: conv4_1 … conv4_3 512 channels
//	block 5: conv5_1 … conv5_3 512 channels
//	fc6 4096, ReLU, dropout 0.5; fc7 4096, ReLU, dropout 0.5; fc8 N
//
// Every convolution is 3×3, stride 1, pad 1, followed by a ReLU; each block
// ends with a 2×2 max-pool of stride 2, so a 224 input gives 7×7×512 =
// 25,088 features to fc6. Weights use He initialisation (normal with
// variance 2/fan-in), biases start at 0.
//
// The variables are named as the Caffe layers ("/net/conv3_2/weights"),
// which lets package interop/caffeimport import a VGG-Face caffemodel directly
// and lets transfer learning freeze the convolutions by name.
//
// The smallest accepted input is 32: five halvings leave a 1×1 map.
// Inputs that are not multiples of 32 work too: pooling uses Caffe's ceil
// mode, as in the original.
func init() {
	register(Net{Name: "vgg16", Doc: "VGG-16 (VGG-Face layout): 13 conv 3×3 in 5 blocks, 2×fc4096, ReLU", minInput: 32,
		build: vgg16})
}

// VGG16Blocks lists the convolution channel counts of VGG-16, one slice per
// block; block i's layers are named conv{i+1}_{j+1}.
var VGG16Blocks = [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}}

func vgg16(b *builder, x *Node) *Node {
	impl := b.cfg.Impl
	cin := 3
	for i, block := range VGG16Blocks {
		for j, out := range block {
			name := fmt.Sprintf("conv%d_%d", i+1, j+1)
			x = ops.Relu(b.conv(name, x, out, 3, 1, 1, heNormal(3*3*cin), constant(0)))
			cin = out
		}
		x = ops.MaxPool2D(impl, x, 2, 2)
	}
	x = ops.Flatten(x)
	in := x.Shape().Dimensions[1]
	x = b.dropout(ops.Relu(b.dense("fc6", x, 4096, heNormal(in), constant(0))), 0.5)
	x = b.dropout(ops.Relu(b.dense("fc7", x, 4096, heNormal(4096), constant(0))), 0.5)
	return b.dense("fc8", x, b.cfg.Classes, heNormal(4096), constant(0))
}
