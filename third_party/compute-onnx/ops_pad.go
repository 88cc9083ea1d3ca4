// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package onnxbackend

// agegender patch: upstream has no Pad. The gradient of a strided
// convolution or slice uses it (for example GEAR's and faceres's graphs
// when their whole trunk is trained), so without it those graphs could
// only be trained on other backends.

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapeinference"
	"github.com/gomlx/compute/shapes"
	"github.com/pkg/errors"
)

// Pad pads x with fillValue (a scalar of x's dtype): axesConfig[i] adds
// Start values before axis i, End after it and Interior between its
// elements.
//
// Start and End become one ONNX Pad (mode "constant").
// ONNX has no interior padding: an axis of n elements with Interior k is
// reshaped to [n, 1], padded to [n, 1+k], reshaped to n·(1+k) and its
// last k elements sliced off.
func (f *Function) Pad(x, fillValue compute.Value, axesConfig ...compute.PadAxis) (compute.Value, error) {
	xNode, ok1 := x.(*Node)
	fillNode, ok2 := fillValue.(*Node)
	if !ok1 || !ok2 {
		return nil, errors.New("inputs must be valid onnxruntime nodes")
	}
	outShape, err := shapeinference.Pad(xNode.shape, axesConfig...)
	if err != nil {
		return nil, err
	}
	if fillNode.shape.Rank() != 0 {
		return nil, errors.Errorf("Pad: fillValue must be a scalar, got shape %s", fillNode.shape)
	}
	rank := xNode.shape.Rank()
	cur := xNode
	for axis, cfg := range axesConfig {
		if cfg.Interior <= 0 {
			continue
		}
		if cur, err = f.padInterior(cur, fillNode, axis, cfg.Interior); err != nil {
			return nil, err
		}
	}
	pads := make([]int64, 2*rank)
	anyPad := false
	for axis, cfg := range axesConfig {
		pads[axis] = int64(cfg.Start)
		pads[rank+axis] = int64(cfg.End)
		anyPad = anyPad || cfg.Start != 0 || cfg.End != 0
	}
	if !anyPad {
		if cur == xNode {
			return f.Identity(xNode)
		}
		return cur, nil // interior padding only
	}
	padsConst, err := f.Constant(pads, 2*rank)
	if err != nil {
		return nil, err
	}
	return f.onnxPad(cur, padsConst.(*Node), fillNode, outShape), nil
}

// padInterior inserts k fill values between the elements of x along axis.
func (f *Function) padInterior(x, fill *Node, axis, k int) (*Node, error) {
	dims := x.shape.Dimensions
	n := dims[axis]
	if n <= 1 {
		return x, nil
	}
	// [..., n, ...] → [..., n, 1, ...]
	expanded := make([]int, 0, len(dims)+1)
	expanded = append(expanded, dims[:axis+1]...)
	expanded = append(expanded, 1)
	expanded = append(expanded, dims[axis+1:]...)
	r, err := f.Reshape(x, expanded...)
	if err != nil {
		return nil, err
	}
	// Pad the new axis at its end by k.
	rank := len(expanded)
	pads := make([]int64, 2*rank)
	pads[rank+axis+1] = int64(k)
	padsConst, err := f.Constant(pads, 2*rank)
	if err != nil {
		return nil, err
	}
	paddedShape := r.(*Node).shape.Clone()
	paddedShape.Dimensions[axis+1] = 1 + k
	padded := f.onnxPad(r.(*Node), padsConst.(*Node), fill, paddedShape)
	// [..., n, 1+k, ...] → [..., n·(1+k), ...], then drop the last k.
	merged := append([]int(nil), dims...)
	merged[axis] = n * (1 + k)
	m, err := f.Reshape(padded, merged...)
	if err != nil {
		return nil, err
	}
	start := make([]int, len(dims))
	limit := append([]int(nil), merged...)
	limit[axis] = merged[axis] - k
	stride := make([]int, len(dims))
	for i := range stride {
		stride[i] = 1
	}
	s, err := f.Slice(m, start, limit, stride)
	if err != nil {
		return nil, err
	}
	return s.(*Node), nil
}

// onnxPad adds an ONNX Pad node (mode "constant").
func (f *Function) onnxPad(x, pads, fill *Node, outShape shapes.Shape) *Node {
	f.nodeCount++
	node := &Node{
		name:   fmt.Sprintf("node_%d", f.nodeCount),
		opType: "Pad",
		inputs: []*Node{x, pads, fill},
		shape:  outShape,
	}
	f.nodes = append(f.nodes, node)
	return node
}
