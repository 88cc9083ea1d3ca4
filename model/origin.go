package model

import (
	"fmt"

	"github.com/agegender/agegender/model/ops"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/ml/layers/activation"
)

// The paper's network, exactly as its Caffe definition
// (../shared/data/adience/caffe/*/train_val*.prototxt):
//
//	conv1 96×7×7 stride 4, ReLU, max-pool 3/2, LRN(5, 1e-4, 0.75)
//	conv2 256×5×5 pad 2,  ReLU, max-pool 3/2, LRN(5, 1e-4, 0.75)
//	conv3 384×3×3 pad 1,  ReLU, max-pool 3/2
//	fc6 512, ReLU, dropout 0.5; fc7 512, ReLU, dropout 0.5; fc8 N
//
// Initialisation as in the prototxt: Gaussian std 0.01 for the convolutions
// and fc8, 0.005 for fc6 and fc7; biases 0 except conv2, fc6 and fc7 (1).
// Pooling uses Caffe's ceil mode, so a 227 input gives 56→28→14→7 and fc6
// sees 7·7·384 = 18,816 features.
//
// The variants change only the activation (SELU, leaky ReLU); with SELU the
// initialisation switches to LeCun normal, the biases to 0 and the input is
// divided by 64 (about its standard deviation), as SELU's
// self-normalisation requires.
func init() {
	register(Net{Name: "origin", Doc: "Levi & Hassner 2015: 3 conv + LRN, 2×fc512, ReLU", minInput: 48,
		build: func(b *builder, x *Node) *Node { return origin(b, x, ReLU) }})
	register(Net{Name: "origin-selu", Doc: "origin with SELU activations (LeCun-normal init)", minInput: 48,
		build: func(b *builder, x *Node) *Node { return origin(b, x, SELU) }})
	register(Net{Name: "origin-leaky", Doc: "origin with leaky ReLU (slope 0.1)", minInput: 48,
		build: func(b *builder, x *Node) *Node { return origin(b, x, LeakyReLU) }})
}

// Activation is the non-linearity of a network's layers.
type Activation int

// The activations of the origin variants.
const (
	ReLU      Activation = iota // max(x, 0), the paper's
	SELU                        // scaled exponential linear unit (self-normalising)
	LeakyReLU                   // max(x, 0.1·x)
)

// String returns "relu", "selu" or "leaky".
func (a Activation) String() string {
	switch a {
	case ReLU:
		return "relu"
	case SELU:
		return "selu"
	case LeakyReLU:
		return "leaky"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// apply computes the activation of x.
func (a Activation) apply(x *Node) *Node {
	switch a {
	case SELU:
		return activation.Selu(x)
	case LeakyReLU:
		return activation.LeakyReluWith(x, 0.1)
	}
	return ops.Relu(x)
}

func origin(b *builder, x *Node, a Activation) *Node {
	impl := b.cfg.Impl
	convW := func(std float64, fanIn int) initSpec {
		if a == SELU {
			return lecunNormal(fanIn)
		}
		return normal(std)
	}
	one := constant(1)
	if a == SELU {
		one = constant(0)
		// SELU's self-normalisation assumes unit-variance inputs; pixels
		// minus the mean have a standard deviation of about 64.
		x = MulScalar(x, 1.0/64)
	}
	x = b.conv("conv1", x, 96, 7, 4, 0, convW(0.01, 7*7*3), constant(0))
	x = ops.LRN(ops.MaxPool2D(impl, a.apply(x), 3, 2), 5, 1e-4, 0.75)
	x = b.conv("conv2", x, 256, 5, 1, 2, convW(0.01, 5*5*96), one)
	x = ops.LRN(ops.MaxPool2D(impl, a.apply(x), 3, 2), 5, 1e-4, 0.75)
	x = b.conv("conv3", x, 384, 3, 1, 1, convW(0.01, 3*3*256), constant(0))
	x = ops.MaxPool2D(impl, a.apply(x), 3, 2)
	x = ops.Flatten(x)
	in := x.Shape().Dimensions[1]
	x = b.dropout(a.apply(b.dense("fc6", x, 512, convW(0.005, in), one)), 0.5)
	x = b.dropout(a.apply(b.dense("fc7", x, 512, convW(0.005, 512), one)), 0.5)
	return b.dense("fc8", x, b.cfg.Classes, convW(0.01, 512), constant(0))
}
