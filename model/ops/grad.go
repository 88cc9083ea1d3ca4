package ops

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
)

// Scatter-free gradients.
//
// The automatic gradient of a Gather is a scatter-add, and overlapping
// windows (a 3×3 stride-1 convolution, a 3/2 max-pool) gather every input
// element several times, so the scatter-add has duplicate indices. ONNX
// Runtime's CPU ScatterND(reduction="add") runs in parallel without
// atomics: with duplicate indices, concurrent updates to one element are
// lost, and the gradient comes out a few percent wrong and different from
// run to run (microsoft/onnxruntime#18048, #23396; seen here as a 5 %
// float64 gradient mismatch on vgg16). The windowed ops below therefore
// gather from StopGradient(x) and route x's gradient through [bridge],
// which computes it with col2im written as a gather and a sum —
// deterministic on every backend.

// bridge returns y unchanged in value and makes the gradients with respect
// to xs equal grad(v), where v is the gradient with respect to y. y must not
// otherwise depend on xs through a differentiable path.
//
// It adds to y a term that is exactly zero, u + (−StopGradient(u)), where
// u holds the elements of all xs, flattened, concatenated, padded with
// zeros to r·|y| and reshaped to [r, y's shape...], and summed over that
// leading axis; a custom gradient on the zero term replaces the incoming v
// (broadcast r times) by grad(v) laid out like u, so that the reshapes carry
// it back to xs. The leading r axis keeps every copy contiguous, and the
// negation of the stopped copy needs no gradient of its own.
func bridge(y *Node, grad func(v *Node) []*Node, xs ...*Node) *Node {
	g := y.Graph()
	n, m := y.Shape().Size(), 0
	for _, x := range xs {
		m += x.Shape().Size()
	}
	r := (m + n - 1) / n
	ydims := y.Shape().Dimensions
	packed := append([]int{r}, ydims...)
	pack := func(ts []*Node) *Node {
		parts := make([]*Node, 0, len(ts)+1)
		for _, t := range ts {
			parts = append(parts, Reshape(t, t.Shape().Size()))
		}
		if r*n > m {
			parts = append(parts, Zeros(g, shapes.Make(y.DType(), r*n-m)))
		}
		if len(parts) == 1 {
			return Reshape(parts[0], packed...)
		}
		return Reshape(Concatenate(parts, 0), packed...)
	}
	u := pack(xs)
	zero := IdentityWithCustomGradient(Add(u, Neg(StopGradient(u))), func(_, vu *Node) *Node {
		// vu is v broadcast along the leading axis; take one copy.
		v := vu
		if r > 1 {
			v = Slice(vu, AxisRange(0, 1))
		}
		return pack(grad(Reshape(v, ydims...)))
	})
	if r == 1 {
		return Add(y, Reshape(zero, ydims...))
	}
	return Add(y, ReduceSum(zero, 0))
}

// needsGradient reports whether a gradient can flow into x: whether some
// path up from x reaches a graph parameter (an input or a variable) without
// crossing a StopGradient. Networks cut their input images (model.Logits),
// so the first convolution builds no input gradient.
func needsGradient(x *Node) bool {
	seen := map[*Node]bool{}
	var walk func(n *Node) bool
	walk = func(n *Node) bool {
		if seen[n] || n.StopGradient() {
			return false
		}
		seen[n] = true
		if n.Type() == NodeTypeParameter {
			return true
		}
		for _, in := range n.Inputs() {
			if walk(in) {
				return true
			}
		}
		return false
	}
	return walk(x)
}

// cut returns x as a node that GoMLX's autodiff treats as a constant.
//
// GoMLX's Gradient skips an op only when every input is a StopGradient
// node; an op whose input merely descends from one is still
// differentiated, and its VJP (dead code, but executed on ONNX Runtime)
// can cost more than the op itself — for a convolution's patch matrix, a
// product as large as the forward pass, a transpose and a scatter. Ops
// whose gradients [bridge] supplies therefore read their operands through
// cut, right at their inputs.
func cut(x *Node) *Node { return StopGradient(x) }

// gatherWindows returns the k×k windows of x [H, W, N, C] read by an
// oh×ow output grid — window o starts at o·stride − pad — as
// [OH, OW, K, K, N, C], with taps outside x reading fill. It is a constant
// for autodiff (see [cut]); callers supply x's gradient with [col2im].
func gatherWindows(x *Node, oh, ow, k, stride, pad int, fill float64) (win *Node) {
	d := x.Shape().Dimensions
	h, w, n, c := d[0], d[1], d[2], d[3]
	outside, anyOutside := int64(h*w), false
	idx := make([]int64, 0, oh*ow*k*k)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ky := 0; ky < k; ky++ {
				for kx := 0; kx < k; kx++ {
					y, xx := oy*stride+ky-pad, ox*stride+kx-pad
					if y < 0 || y >= h || xx < 0 || xx >= w {
						idx, anyOutside = append(idx, outside), true
					} else {
						idx = append(idx, int64(y*w+xx))
					}
				}
			}
		}
	}
	g := x.Graph()
	cells := Reshape(x, h*w, n, c)
	if anyOutside {
		cells = Concatenate([]*Node{cells, BroadcastToDims(Scalar(g, x.DType(), fill), 1, n, c)}, 0)
	}
	return cut(Gather(cut(cells), Reshape(Const(g, idx), oh, ow, k, k, 1), false))
}

// readers lists, for each of size input positions along one axis, the
// (output index, kernel offset) pairs of the windows that read it — those
// with o·stride + kk − pad = position — padded to q = ⌈k/stride⌉ entries
// with o = out, which callers point at an extra zero entry.
func readers(size, out, k, stride, pad int) [][2]int {
	q := (k + stride - 1) / stride
	r := make([][2]int, 0, size*q)
	for y := 0; y < size; y++ {
		n := 0
		for kk := 0; kk < k; kk++ {
			if o := y + pad - kk; o >= 0 && o%stride == 0 && o/stride < out {
				r = append(r, [2]int{o / stride, kk})
				n++
			}
		}
		for ; n < q; n++ {
			r = append(r, [2]int{out, 0})
		}
	}
	return r
}

// gatherPatches returns the k×k windows of x [H, W, N, C] read by an
// oh×ow output grid with the given stride and zero padding, one row per
// (output position, image) — [OH·OW·N, K·K·C] — as a constant for autodiff
// (see [cut] and [bridge]). Taps in the padding read an appended zero row,
// so x itself is never padded.
func gatherPatches(x *Node, oh, ow, k, stride, pad int) *Node {
	d := x.Shape().Dimensions
	h, w, n, c := d[0], d[1], d[2], d[3]
	zero := int64(h * w * n)
	idx := make([]int64, 0, oh*ow*n*k*k)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for b := 0; b < n; b++ {
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						y, xx := oy*stride+ky-pad, ox*stride+kx-pad
						if y < 0 || y >= h || xx < 0 || xx >= w {
							idx = append(idx, zero)
						} else {
							idx = append(idx, int64((y*w+xx)*n+b))
						}
					}
				}
			}
		}
	}
	rows := Reshape(x, h*w*n, c)
	if pad > 0 {
		rows = Concatenate([]*Node{rows, Zeros(x.Graph(), shapes.Make(x.DType(), 1, c))}, 0)
	}
	p := Gather(cut(rows), Reshape(Const(x.Graph(), idx), oh*ow*n, k*k, 1), false) // [OH·OW·N, K·K, C]
	return cut(Reshape(p, oh*ow*n, k*k*c))
}

// col2im is the adjoint of gatherWindows: it sums window gradients
// v [OH, OW, K, K, N, C] back onto an h×w input grid [H, W, N, C] (window o
// starts at o·stride − pad; taps outside the grid are dropped).
//
// It is itself a gather, not a scatter: input row y is read by the windows
// (oy, ky) with oy·s + ky = y, at most q = ⌈k/s⌉ of them, and likewise for
// columns. One Gather collects, for every input position, the q² window
// entries that read it (unused slots point at an extra zero entry) into
// [q, q, H, W, N, C], and a ReduceSum adds the q² blocks.
func col2im(v *Node, h, w, stride, pad int) *Node {
	d := v.Shape().Dimensions
	oh, ow, k := d[0], d[1], d[2]
	q := (k + stride - 1) / stride
	rows, cols := readers(h, oh, k, stride, pad), readers(w, ow, k, stride, pad)
	zero := int64(oh * ow) // index of the appended zero entry
	idx := make([]int64, 0, q*q*h*w*3)
	for i := 0; i < q; i++ {
		for j := 0; j < q; j++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, c := rows[y*q+i], cols[x*q+j]
					o := zero
					if r[0] < oh && c[0] < ow {
						o = int64(r[0]*ow + c[0])
					}
					idx = append(idx, o, int64(r[1]), int64(c[1]))
				}
			}
		}
	}
	g := v.Graph()
	rest := d[2:]
	params := Concatenate([]*Node{
		Reshape(v, append([]int{oh * ow}, rest...)...),
		Zeros(g, shapes.Make(v.DType(), append([]int{1}, rest...)...)),
	}, 0)
	gathered := Gather(params, Reshape(Const(g, idx), q, q, h, w, 3), false) // [q, q, H, W, N, C]
	return ReduceSum(gathered, 0, 1)
}

// convInputGrad is the gradient of a convolution (stride s, zero padding
// pad) with respect to its input [H, W, N, Cin], given v [OH, OW, N, Cout]
// and the kernel [K, K, Cin, Cout] — col2im(v·kernelᵀ) without
// materialising the [OH, OW, N, K, K, Cin] window gradient, in three steps
// that are a row gather, one plain MatMul and a row gather:
//
//  1. U[y, ox, n, ky] = v[oy, ox, n] for oy·s + ky = y + pad (the zero row
//     where no window row matches) → [H·OW·N, K·Cout];
//  2. T = U · kernel laid out [K·Cout, K·Cin] → [H·OW·N, K·Cin];
//  3. dx[y, x, n] = Σ T[y, ox, n, kx] over ox·s + kx = x + pad: a gather of
//     q = ⌈K/s⌉ rows per input position and a sum.
func convInputGrad(v, kernel *Node, h, w, stride, pad int) *Node {
	g := v.Graph()
	d := v.Shape().Dimensions
	oh, ow, n, cout := d[0], d[1], d[2], d[3]
	k, cin := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[2]
	q := (k + stride - 1) / stride
	// 1. Rows of v.
	zero := int64(oh * ow * n)
	rowIdx := make([]int64, 0, h*ow*n*k)
	for y := 0; y < h; y++ {
		for ox := 0; ox < ow; ox++ {
			for b := 0; b < n; b++ {
				for ky := 0; ky < k; ky++ {
					i := zero
					if o := y + pad - ky; o >= 0 && o%stride == 0 && o/stride < oh {
						i = int64(((o/stride)*ow+ox)*n + b)
					}
					rowIdx = append(rowIdx, i)
				}
			}
		}
	}
	vz := Concatenate([]*Node{Reshape(v, oh*ow*n, cout), Zeros(g, shapes.Make(v.DType(), 1, cout))}, 0)
	u := Reshape(Gather(vz, Reshape(Const(g, rowIdx), h*ow*n, k, 1), false), h*ow*n, k*cout)
	// 2. One MatMul with the kernel as [ky, Cout] × [kx, Cin].
	k2 := Reshape(TransposeAllAxes(kernel, 0, 3, 1, 2), k*cout, k*cin)
	t := Reshape(MatMul(u, k2), h*ow*n*k, cin)
	// 3. Columns: sum the q entries that read each input position.
	zero = int64(h * ow * n * k)
	cols := readers(w, ow, k, stride, pad)
	colIdx := make([]int64, 0, h*w*n*q)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for b := 0; b < n; b++ {
				for _, r := range cols[x*q : (x+1)*q] {
					i := zero
					if r[0] < ow {
						i = int64(((y*ow+r[0])*n+b)*k + r[1])
					}
					colIdx = append(colIdx, i)
				}
			}
		}
	}
	tz := Concatenate([]*Node{t, Zeros(g, shapes.Make(v.DType(), 1, cin))}, 0)
	dx := ReduceSum(Gather(tz, Reshape(Const(g, colIdx), h*w*n, q, 1), false), 1) // [H·W·N, Cin]
	return Reshape(dx, h, w, n, cin)
}
