// Copyright 2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package onnxbackend

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute"
)

// agegender patch: element-wise ops read broadcast operands through ONNX's
// own (NumPy) broadcasting instead of an Expand, and Max(x, 0) is Relu.
//
// GoMLX broadcasts an operand explicitly (BroadcastInDim, an ONNX Expand)
// before an element-wise op. ONNX's element-wise ops broadcast by
// themselves, and ONNX Runtime fuses an Add of a per-channel constant
// ([C, 1, 1]) after a Conv into the Conv's bias, and a Relu into the Conv
// or Add before it, but neither through an Expand or a Max with a tensor
// of zeros: BlazeFace's back model ran twice as slow as the same network
// exported natively. The Expand left unused is dropped by Return.

// unexpanded returns the value that operand n broadcasts when n is an
// Expand built by BroadcastInDim (a Reshape to the output's rank with ones
// where it broadcasts, then Expand) and ONNX's broadcasting of that value
// against other gives n's own shape; otherwise n.
func unexpanded(n, other *Node) *Node {
	if n.opType != "Expand" || len(n.inputs) != 2 || other.shape.Rank() != n.shape.Rank() {
		return n
	}
	src := n.inputs[0]
	if src.shape.Rank() != n.shape.Rank() {
		return n
	}
	for i, d := range n.shape.Dimensions {
		if o := other.shape.Dimensions[i]; o != d && o != 1 {
			return n
		}
		if s := src.shape.Dimensions[i]; s != d && s != 1 {
			return n
		}
		// The output along axis i must still be d: one of the two has it.
		if other.shape.Dimensions[i] != d && src.shape.Dimensions[i] != d {
			return n
		}
	}
	return src
}

// scalarConstant returns the one value of n when n is a constant holding
// one value, possibly reshaped or expanded.
func scalarConstant(n *Node) (float64, bool) {
	for n.opType == "Reshape" || n.opType == "Expand" {
		n = n.inputs[0]
	}
	if n.opType != "Constant" || n.shape.Size() != 1 {
		return 0, false
	}
	switch v := n.flatValue.(type) {
	case []float32:
		return float64(v[0]), true
	case []float64:
		return v[0], true
	}
	return 0, false
}

// elementwise emits the binary element-wise op onnxOpType with its
// operands' explicit broadcasts undone where ONNX's own broadcasting gives
// the same result, and Max(x, 0) of floats as Relu(x). It returns nil when
// neither applies (the caller then emits the op as it is).
func (f *Function) elementwise(onnxOpType string, lhs, rhs *Node) *Node {
	if lhs.shape.DType != rhs.shape.DType || !lhs.shape.DType.IsFloat() || !slices.Equal(lhs.shape.Dimensions, rhs.shape.Dimensions) {
		return nil
	}
	if onnxOpType == "Max" {
		for _, p := range [][2]*Node{{lhs, rhs}, {rhs, lhs}} {
			if v, ok := scalarConstant(p[1]); ok && v == 0 {
				return f.newNode("Relu", p[0])
			}
		}
	}
	l, r := unexpanded(lhs, rhs), unexpanded(rhs, lhs)
	if l == lhs && r == rhs {
		return nil
	}
	if l != lhs && r != rhs {
		r = rhs // one of them must keep the output's shape
	}
	n := f.newNode(onnxOpType, l, r)
	n.shape = lhs.shape
	return n
}

// elementwiseOp is addBinaryOp through elementwise.
func (f *Function) elementwiseOp(opType compute.OpType, onnxOpType string, lhs, rhs compute.Value) (compute.Value, error) {
	l, ok1 := lhs.(*Node)
	r, ok2 := rhs.(*Node)
	if ok1 && ok2 {
		if n := f.elementwise(onnxOpType, l, r); n != nil {
			return n, nil
		}
	}
	return f.addBinaryOp(opType, onnxOpType, lhs, rhs)
}

// newNode appends a node of opType reading inputs, with the shape of the
// first input.
func (f *Function) newNode(opType string, inputs ...*Node) *Node {
	f.nodeCount++
	n := &Node{
		name:   fmt.Sprintf("node_%d", f.nodeCount),
		opType: opType,
		inputs: inputs,
		shape:  inputs[0].shape,
	}
	f.nodes = append(f.nodes, n)
	return n
}

// prune drops the nodes of f that no return value depends on (such as the
// Expands that elementwise bypassed), keeping the parameters. A node with
// several outputs (outputNames) is read through stand-in nodes of those
// names, so dependencies are followed by name.
func (f *Function) prune() {
	producer := make(map[string]*Node, len(f.nodes))
	for _, n := range f.nodes {
		producer[n.name] = n
		for _, o := range n.outputNames {
			producer[o] = n
		}
	}
	live := make(map[*Node]bool, len(f.nodes))
	stack := slices.Clone(f.returns)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p, ok := producer[n.name]; ok {
			n = p
		}
		if live[n] {
			continue
		}
		live[n] = true
		stack = append(stack, n.inputs...)
	}
	kept := f.nodes[:0]
	for _, n := range f.nodes {
		if live[n] || n.opType == "Parameter" {
			kept = append(kept, n)
		}
	}
	clear(f.nodes[len(kept):])
	f.nodes = kept
}
