// Package ops holds the few tensor primitives the networks are built from —
// 2-D convolution, max pooling, local response normalisation — written so
// that they train correctly and fast on every GoMLX backend.
//
// This is the one place where backend workarounds live. GoMLX's built-in
// convolution and pooling ops are the natural choice, and [Native] uses them;
// but on the pure-Go backend the built-in convolution is a naive loop (about
// 0.4 images/s for the paper's net) and max-pool has no gradient, while the
// ONNX Runtime backend computes the gradient of strided convolutions and of
// overlapping max-pools wrongly (see ../shared/docs/STACK.md). [Portable]
// therefore expresses every op with Gather, DotGeneral, ReduceMax and
// Concatenate only, ops that every backend implements, and writes the
// gradient of the gathers itself (grad.go): the automatic one is a
// scatter-add, which ONNX Runtime computes racily when indices repeat.
//
//   - a convolution gathers its input patches (im2col) with one Gather and
//     contracts them with the kernel in one DotGeneral;
//   - a max-pool gathers each window and reduces it with ReduceMax;
//   - LRN across channels is a matrix product with a banded C×C matrix;
//   - zero padding is a Concatenate with zeros (no Pad op);
//   - a gather's gradient is col2im by slices and concatenation, not a
//     scatter-add (see [bridge]);
//   - gather indices are int64.
//
// Activations use the layout [H, W, N, C] ("HWNC") inside the network: with
// the spatial axes first, a single Gather over the two leading axes extracts
// patches for the whole batch and channel block at once. [ToHWNC] and
// [FromHWNC] convert at the network's edges.
package ops

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors/images"
)

// Impl selects how the primitives are expressed in the graph.
type Impl int

const (
	// Portable uses Gather/DotGeneral/ReduceMax only: correct gradients on
	// every backend, and the fastest choice on the pure-Go backend.
	Portable Impl = iota
	// Native uses GoMLX's convolution and pooling ops: best on XLA (GPU),
	// where they map to cuDNN.
	Native
)

// String returns "portable" or "native".
func (i Impl) String() string {
	if i == Native {
		return "native"
	}
	return "portable"
}

// ToHWNC converts a batch of images [N, H, W, C] to the internal layout.
func ToHWNC(x *Node) *Node { return TransposeAllAxes(x, 1, 2, 0, 3) }

// FromHWNC converts the internal layout [H, W, N, C] back to [N, H, W, C].
func FromHWNC(x *Node) *Node { return TransposeAllAxes(x, 2, 0, 1, 3) }

// ConvOutSize is the output length of a convolution along one axis
// (floor division, as in Caffe and PyTorch).
func ConvOutSize(in, kernel, stride, pad int) int {
	return (in+2*pad-kernel)/stride + 1
}

// PoolOutSize is the output length of a max-pool along one axis in Caffe's
// ceil mode: windows that run past the end are kept and clipped, so a
// 56-wide input pooled 3/2 gives 28 (PyTorch: ceil_mode=True).
func PoolOutSize(in, kernel, stride int) int {
	out := (in-kernel+stride-1)/stride + 1
	if (out-1)*stride >= in { // the last window must start inside the input
		out--
	}
	return out
}

// padSpatial zero-pads the two leading (spatial) axes of x by pad on each side.
func padSpatial(x *Node, pad int) *Node {
	if pad == 0 {
		return x
	}
	g := x.Graph()
	dims := x.Shape().Dimensions
	h, w, rest := dims[0], dims[1], dims[2:]
	zh := Zeros(g, shapes.Make(x.DType(), append([]int{pad, w}, rest...)...))
	x = Concatenate([]*Node{zh, x, zh}, 0)
	zw := Zeros(g, shapes.Make(x.DType(), append([]int{h + 2*pad, pad}, rest...)...))
	return Concatenate([]*Node{zw, x, zw}, 1)
}

// padLow appends dh rows and dw columns filled with value at the end of
// the two leading axes (no-op for non-positive amounts).
func padLow(x *Node, dh, dw int, value float64) *Node {
	g := x.Graph()
	if dh > 0 {
		d := append([]int{dh}, x.Shape().Dimensions[1:]...)
		x = Concatenate([]*Node{x, BroadcastToDims(Scalar(g, x.DType(), value), d...)}, 0)
	}
	if dw > 0 {
		d := x.Shape().Dimensions
		d = append([]int{d[0], dw}, d[2:]...)
		x = Concatenate([]*Node{x, BroadcastToDims(Scalar(g, x.DType(), value), d...)}, 1)
	}
	return x
}

// windowIndices builds int64 indices of shape [OH, OW, K, K, 2] pointing at
// the input positions each output position reads. Positions past the end are
// clamped to the last row/column (callers pad so that this never happens).
func windowIndices(g *Graph, h, w, oh, ow, k, stride int) *Node {
	idx := make([]int64, 0, oh*ow*k*k*2)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ky := 0; ky < k; ky++ {
				for kx := 0; kx < k; kx++ {
					y, x := min(oy*stride+ky, h-1), min(ox*stride+kx, w-1)
					idx = append(idx, int64(y), int64(x))
				}
			}
		}
	}
	t := Const(g, idx)
	return Reshape(t, oh, ow, k, k, 2)
}

// Conv2D convolves x [H, W, N, Cin] with kernel [K, K, Cin, Cout] (square
// kernel, same stride and zero padding on both axes) and returns
// [OH, OW, N, Cout]. No bias is added.
func Conv2D(impl Impl, x, kernel *Node, stride, pad int) *Node {
	kd := kernel.Shape().Dimensions
	if len(kd) != 4 || kd[0] != kd[1] {
		panic(fmt.Sprintf("ops.Conv2D: kernel must be [K, K, Cin, Cout], got %s", kernel.Shape()))
	}
	k := kd[0]
	if impl == Native {
		// NHWC conv through the backend, back to HWNC.
		y := Convolve(FromHWNC(x), kernel).ChannelsAxis(images.ChannelsLast).StridePerAxis(stride, stride).
			PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
		return ToHWNC(y)
	}
	x = padSpatial(x, pad)
	h, w := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	oh, ow := ConvOutSize(h, k, stride, 0), ConvOutSize(w, k, stride, 0)
	if k == 1 && stride == 1 {
		// A 1×1 convolution is a plain matrix product over channels.
		return DotGeneral(x, []int{3}, nil, Reshape(kernel, kd[2], kd[3]), []int{0}, nil)
	}
	var y *Node
	if n, cin := x.Shape().Dimensions[2], kd[2]; cin >= 16 {
		// Patches laid out [OH·OW·N, K·K·Cin] make the convolution one plain
		// MatMul; with the [OH, OW, K, K, N, Cin] layout below, ONNX Runtime
		// first transposes all patches (2× slower for conv2 at 227). Gathering
		// rows of Cin values pays off when Cin is not tiny.
		patches := gatherPatches(x, oh, ow, k, stride) // [OH·OW·N, K·K·Cin]
		y = DotGeneral(patches, []int{1}, nil, Reshape(kernel, k*k*cin, kd[3]), []int{0}, nil)
		y = Reshape(y, oh, ow, n, kd[3])
	} else {
		patches := gatherWindows(x, oh, ow, k, stride)                            // [OH, OW, K, K, N, Cin]
		y = DotGeneral(patches, []int{2, 3, 5}, nil, kernel, []int{0, 1, 2}, nil) // [OH, OW, N, Cout]
	}
	return bridge(y, x, func(v *Node) *Node {
		return convInputGrad(v, kernel, h, w, stride)
	})
}

// MaxPool2D applies a k×k max-pool with the given stride to x [H, W, N, C] in
// Caffe's ceil mode (see [PoolOutSize]).
func MaxPool2D(impl Impl, x *Node, k, stride int) *Node {
	d := x.Shape().Dimensions
	h, w := d[0], d[1]
	oh, ow := PoolOutSize(h, k, stride), PoolOutSize(w, k, stride)
	if impl == Native {
		// Pad the bottom/right edge with -inf so ceil mode matches, then pool.
		// Pad the bottom/right edge so that ceil mode matches Caffe.
		nh, nw := (oh-1)*stride+k, (ow-1)*stride+k
		y := MaxPool(FromHWNC(x)).ChannelsAxis(images.ChannelsLast).Window(k).Strides(stride).
			PaddingPerDim([][2]int{{0, max(0, nh-h)}, {0, max(0, nw-w)}}).Done()
		return ToHWNC(y)
	}
	// Ceil mode: windows that run past the bottom/right edge read a row or
	// column of -1e30 rather than repeating an edge element, because a value
	// present twice in one window would receive its gradient twice.
	x = padLow(x, (oh-1)*stride+k-h, (ow-1)*stride+k-w, -1e30)
	return maxPoolWindows(x, oh, ow, k, stride)
}

// maxPoolWindows max-pools x (already padded so every window lies inside)
// and routes the gradient to each window's maximum without a scatter. Like
// GoMLX's ReduceMax gradient, tied maxima all receive it.
func maxPoolWindows(x *Node, oh, ow, k, stride int) *Node {
	win := gatherWindows(x, oh, ow, k, stride) // [OH, OW, K, K, N, C]
	y := ReduceMax(win, 2, 3)                  // [OH, OW, N, C]
	d := x.Shape().Dimensions
	return bridge(y, x, func(v *Node) *Node {
		yd := y.Shape().Dimensions
		keep := []int{yd[0], yd[1], 1, 1, yd[2], yd[3]}
		isMax := NonNegativeIndicator(Sub(win, Reshape(StopGradient(y), keep...)))
		return col2im(Mul(isMax, Reshape(v, keep...)), d[0], d[1], stride)
	})
}

// MaxPoolSame is a k×k, stride-1 max-pool that keeps the spatial size
// (padding with -1e30), as used by inception blocks' pool branch.
func MaxPoolSame(x *Node, k int) *Node {
	d := x.Shape().Dimensions
	h, w := d[0], d[1]
	p := k / 2
	x = padLow(x, p, p, -1e30)
	g := x.Graph()
	front := func(x *Node, axis, n int) *Node {
		dd := append([]int(nil), x.Shape().Dimensions...)
		dd[axis] = n
		return Concatenate([]*Node{BroadcastToDims(Scalar(g, x.DType(), -1e30), dd...), x}, axis)
	}
	x = front(front(x, 0, p), 1, p)
	return maxPoolWindows(x, h, w, k, 1)
}

// LRN is Caffe's local response normalisation across channels:
//
//	y_c = x_c / (1 + alpha/size · Σ_{|c'-c| ≤ size/2} x_c'²)^beta
//
// computed as a product with a banded C×C 0/1 matrix over the last axis,
// which differentiates correctly on every backend.
func LRN(x *Node, size int, alpha, beta float64) *Node {
	g := x.Graph()
	c := x.Shape().Dimensions[x.Rank()-1]
	band := make([]float32, c*c)
	for i := 0; i < c; i++ {
		for j := max(0, i-size/2); j <= min(c-1, i+size/2); j++ {
			band[i*c+j] = 1
		}
	}
	bandT := Reshape(Const(g, band), c, c)
	if x.DType() != dtypes.Float32 {
		bandT = ConvertDType(bandT, x.DType())
	}
	sums := DotGeneral(Square(x), []int{x.Rank() - 1}, nil, bandT, []int{0}, nil)
	den := Pow(AddScalar(MulScalar(sums, alpha/float64(size)), 1), Scalar(g, x.DType(), beta))
	return Div(x, den)
}

// Flatten turns x [H, W, N, C] into [N, H·W·C] (row-major H, W, C order).
func Flatten(x *Node) *Node {
	d := x.Shape().Dimensions
	return Reshape(FromHWNC(x), d[2], d[0]*d[1]*d[3])
}
