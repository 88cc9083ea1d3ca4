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
//   - a convolution gathers its input patches (im2col) as rows
//     [OH·OW·N, K·K·Cin] with one Gather and multiplies them by the kernel
//     in one MatMul; a strided convolution over few channels (the first
//     layer) is first rewritten as a stride-1 one over space-to-depth blocks;
//   - a max-pool gathers each window and reduces it with ReduceMax;
//   - LRN across channels is a matrix product with a banded C×C matrix;
//   - padding is an extra cell that out-of-bounds taps read (zero, or
//     -1e30 for pools), not a padded copy (no Pad op);
//   - gradients are written by hand (grad.go) as gathers, MatMuls and sums,
//     never a scatter-add, and reach their inputs through a zero-valued
//     "bridge" term with a custom gradient;
//   - operands whose gradient is written by hand are cut from autodiff
//     right at the op ("cut"), so GoMLX builds no dead gradients;
//   - gather indices are int64.
//
// [Relu] is here too: GoMLX's differentiates through Sign, which ONNX
// Runtime runs slowly. [Auto] picks Portable or Native by batch size, for
// inference on ONNX Runtime. bench/layers times and profiles each op.
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
	// Auto picks per graph by batch size: Portable below [AutoNativeBatch]
	// images, Native from there. ONNX Runtime's native convolution has a
	// high cost per call, so for inference there it is slower at batch 1
	// (51 vs 78 images/s for origin at 227) and faster at 32 (101 vs 89).
	Auto
)

// AutoNativeBatch is the batch size from which [Auto] uses native ops.
const AutoNativeBatch = 8

// String returns "portable", "native" or "auto".
func (i Impl) String() string {
	switch i {
	case Native:
		return "native"
	case Auto:
		return "auto"
	}
	return "portable"
}

// NativeFor reports whether i uses native ops for a batch of n images.
func (i Impl) NativeFor(n int) bool { return i.resolve(n) == Native }

// resolve turns Auto into Portable or Native for a batch of n images.
func (i Impl) resolve(n int) Impl {
	if i != Auto {
		return i
	}
	if n >= AutoNativeBatch {
		return Native
	}
	return Portable
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

// Conv2D convolves x [H, W, N, Cin] with kernel [K, K, Cin, Cout] (square
// kernel, same stride and zero padding on both axes) and returns
// [OH, OW, N, Cout]. No bias is added.
func Conv2D(impl Impl, x, kernel *Node, stride, pad int) *Node {
	kd := kernel.Shape().Dimensions
	if len(kd) != 4 || kd[0] != kd[1] {
		panic(fmt.Sprintf("ops.Conv2D: kernel must be [K, K, Cin, Cout], got %s", kernel.Shape()))
	}
	k := kd[0]
	if impl.resolve(x.Shape().Dimensions[2]) == Native {
		// NHWC conv through the backend, back to HWNC.
		y := Convolve(FromHWNC(x), kernel).ChannelsAxis(images.ChannelsLast).StridePerAxis(stride, stride).
			PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
		return ToHWNC(y)
	}
	oh, ow := ConvOutSize(x.Shape().Dimensions[0], k, stride, pad), ConvOutSize(x.Shape().Dimensions[1], k, stride, pad)
	if stride > 1 && kd[2] < 16 {
		// A strided convolution over few channels (the first layer) is
		// rewritten as a stride-1 convolution over space-to-depth blocks:
		// its patches become rows of stride²·Cin values (see below).
		x, kernel = spaceToDepth(padSpatial(x, pad), kernel, stride)
		kd, k, stride, pad = kernel.Shape().Dimensions, kernel.Shape().Dimensions[0], 1, 0
	}
	n, cin, cout := x.Shape().Dimensions[2], kd[2], kd[3]
	if d := x.Shape().Dimensions; k == 1 && stride == 1 && pad == 0 && d[0] == oh && d[1] == ow {
		// A 1×1 convolution is a plain matrix product over channels, written
		// on 2-D views so that both of its gradients are plain products too
		// (contracting H, W and N at once is an Einsum on ONNX Runtime).
		return Reshape(MatMul(Reshape(x, oh*ow*n, cin), Reshape(kernel, cin, cout)), oh, ow, n, cout)
	}
	var y *Node
	var dk func(v *Node) *Node
	if cin < 16 {
		// Few channels: gather whole windows [OH, OW, K, K, N, Cin]; rows
		// of Cin values would be too short to gather one by one.
		patches := gatherWindows(x, oh, ow, k, stride, pad, 0)
		y = DotGeneral(patches, []int{2, 3, 5}, nil, cut(kernel), []int{0, 1, 2}, nil) // [OH, OW, N, Cout]
		dk = func(v *Node) *Node {
			return DotGeneral(patches, []int{0, 1, 4}, nil, v, []int{0, 1, 2}, nil) // [K, K, Cin, Cout]
		}
	} else {
		// Patches laid out [OH·OW·N, K·K·Cin] make the convolution one plain
		// MatMul (the [OH, OW, K, K, N, Cin] layout above costs ONNX Runtime
		// a transpose of all patches: 2× slower for conv2 at 227).
		patches := gatherPatches(x, oh, ow, k, stride, pad)
		y = Reshape(MatMul(patches, cut(Reshape(kernel, k*k*cin, cout))), oh, ow, n, cout)
		dk = func(v *Node) *Node {
			// The kernel's gradient is patchesᵀ·v; computed as (vᵀ·patches)ᵀ
			// it stays a plain MatMul that transposes v, not the patches.
			vt := Transpose(Reshape(v, oh*ow*n, cout), 0, 1)
			return Reshape(Transpose(MatMul(vt, patches), 0, 1), kd...)
		}
	}
	// One bridge carries both gradients; for the network's input image,
	// which needs none, only the kernel's is built.
	h, w, kc := x.Shape().Dimensions[0], x.Shape().Dimensions[1], cut(kernel)
	if !needsGradient(x) {
		return bridge(y, func(v *Node) []*Node { return []*Node{dk(v)} }, kernel)
	}
	return bridge(y, func(v *Node) []*Node {
		return []*Node{convInputGrad(v, kc, h, w, stride, pad), dk(v)}
	}, x, kernel)
}

// spaceToDepth rewrites a convolution of x [H, W, N, C] (already padded)
// with kernel [K, K, C, Cout] and stride s as an equivalent stride-1
// convolution: x becomes [H', W', N, s·s·C] blocks (zero-padded to a
// multiple of s, and far enough that every window fits) and the kernel,
// zero-padded to K' = ⌈K/s⌉·s, becomes [K'/s, K'/s, s·s·C, Cout].
// Output position o reads blocks o … o+K'/s−1, which hold exactly the input
// rows o·s … o·s+K'−1 of the original window (the padded rows meet zero
// weights). Only reshapes, transposes and zero concatenations are used, so
// gradients flow through it on every backend.
func spaceToDepth(x, kernel *Node, s int) (*Node, *Node) {
	d, kd := x.Shape().Dimensions, kernel.Shape().Dimensions
	h, w, n, c, k, cout := d[0], d[1], d[2], d[3], kd[0], kd[3]
	kb := (k + s - 1) / s // kernel size in blocks
	oh, ow := ConvOutSize(h, k, s, 0), ConvOutSize(w, k, s, 0)
	hb, wb := max((h+s-1)/s, oh-1+kb), max((w+s-1)/s, ow-1+kb)
	x = padLow(x, hb*s-h, wb*s-w, 0)
	x = TransposeAllAxes(Reshape(x, hb, s, wb, s, n, c), 0, 2, 4, 1, 3, 5)
	x = Reshape(x, hb, wb, n, s*s*c)
	kernel = padLow(kernel, kb*s-k, kb*s-k, 0)
	kernel = TransposeAllAxes(Reshape(kernel, kb, s, kb, s, c, cout), 0, 2, 1, 3, 4, 5)
	return x, Reshape(kernel, kb, kb, s*s*c, cout)
}

// MaxPool2D applies a k×k max-pool with the given stride to x [H, W, N, C] in
// Caffe's ceil mode (see [PoolOutSize]).
func MaxPool2D(impl Impl, x *Node, k, stride int) *Node {
	d := x.Shape().Dimensions
	h, w := d[0], d[1]
	oh, ow := PoolOutSize(h, k, stride), PoolOutSize(w, k, stride)
	if impl.resolve(d[2]) == Native {
		// Pad the bottom/right edge so that ceil mode matches Caffe.
		nh, nw := (oh-1)*stride+k, (ow-1)*stride+k
		y := MaxPool(FromHWNC(x)).ChannelsAxis(images.ChannelsLast).Window(k).Strides(stride).
			PaddingPerDim([][2]int{{0, max(0, nh-h)}, {0, max(0, nw-w)}}).Done()
		return ToHWNC(y)
	}
	// Ceil mode: taps of windows that run past the bottom/right edge read
	// -1e30 rather than repeating an edge element, because a value present
	// twice in one window would receive its gradient twice.
	return maxPoolWindows(x, oh, ow, k, stride, 0)
}

// maxPoolWindows max-pools x with windows starting at o·stride − pad (taps
// outside x read -1e30) and routes the gradient to each window's maximum
// without a scatter. Like GoMLX's ReduceMax gradient, tied maxima all
// receive it.
func maxPoolWindows(x *Node, oh, ow, k, stride, pad int) *Node {
	win := gatherWindows(x, oh, ow, k, stride, pad, -1e30) // [OH, OW, K, K, N, C]
	y := ReduceMax(win, 2, 3)                              // [OH, OW, N, C]
	d := x.Shape().Dimensions
	return bridge(y, func(v *Node) []*Node {
		yd := y.Shape().Dimensions
		keep := []int{yd[0], yd[1], 1, 1, yd[2], yd[3]}
		full := win.Shape().Dimensions
		isMax := ConvertDType(Equal(win, BroadcastToDims(Reshape(cut(y), keep...), full...)), win.DType())
		routed := Mul(isMax, BroadcastToDims(Reshape(v, keep...), full...))
		return []*Node{col2im(routed, d[0], d[1], stride, pad)}
	}, x)
}

// MaxPoolSame is a k×k, stride-1 max-pool that keeps the spatial size
// (padding with -1e30), as used by inception blocks' pool branch.
func MaxPoolSame(x *Node, k int) *Node {
	d := x.Shape().Dimensions
	return maxPoolWindows(x, d[0], d[1], k, 1, k/2)
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
	sums := DotGeneral(Square(x), []int{x.Rank() - 1}, nil, cut(bandT), []int{0}, nil)
	den := Pow(AddScalar(MulScalar(sums, alpha/float64(size)), 1), Scalar(g, x.DType(), beta))
	return Div(x, den)
}

// Relu is max(x, 0), written as x times a stopped 0/1 mask so that its
// gradient is one product. GoMLX's Relu (Max(x, 0)) differentiates through
// two Sign ops, which ONNX Runtime runs several times slower than a product:
// 50 ms per training step for the first ReLU of origin at 227, batch 32.
// The gradient at exactly 0 is 0, as in PyTorch.
func Relu(x *Node) *Node {
	mask := ConvertDType(GreaterThan(x, ScalarZero(x.Graph(), x.DType())), x.DType())
	return Mul(x, cut(mask))
}

// Flatten turns x [H, W, N, C] into [N, H·W·C] (row-major H, W, C order).
func Flatten(x *Node) *Node {
	d := x.Shape().Dimensions
	return Reshape(FromHWNC(x), d[2], d[0]*d[1]*d[3])
}

// Columns returns x[:, from:to] for x [N, K] as a product with a constant
// 0/1 selection matrix [K, to-from]. Its gradient is a product too:
// GoMLX differentiates Slice through Pad, which the ONNX Runtime backend
// does not implement, so a slice that needs a gradient goes through here.
func Columns(x *Node, from, to int) *Node {
	k := x.Shape().Dimensions[1]
	sel := make([]float64, k*(to-from))
	for j := from; j < to; j++ {
		sel[j*(to-from)+j-from] = 1
	}
	m := ConvertDType(Const(x.Graph(), sel), x.DType())
	m = Reshape(m, k, to-from)
	return DotGeneral(x, []int{1}, nil, m, []int{0}, nil)
}
