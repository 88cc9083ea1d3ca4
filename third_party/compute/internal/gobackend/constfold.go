// agegender patch: constant folding, so that work on constants (a reshaped
// or scaled weight) is done once at compilation instead of at every run.

package gobackend

import (
	"github.com/gomlx/compute"
)

func init() {
	// After the other transformations (ImplicitBroadcastFusion is 100), so
	// that a broadcast they leave out is not folded first.
	RegisterTransformation(-100, constantFolding{})
}

// maxFoldedGrowth is how many bytes a folded node may add beyond its
// inputs' bytes: a broadcast of a small constant to a large shape stays an
// op (the binary ops broadcast it implicitly, without the memory).
const maxFoldedGrowth = 64 << 10

// constantFolding replaces every node whose inputs are all constants by a
// constant holding its value:
//
//   - a Reshape of a constant becomes a constant that shares its storage
//     (no copy, at compilation or at run time: the executor copies a
//     reshaped constant at every run, since it does not own it);
//   - any other single-output op without closures or side effects (not
//     RNGBitGenerator) is run once, by its executor, when its output is
//     no larger than its inputs plus maxFoldedGrowth bytes.
//
// Nodes keep their index, so the function's order stays topological;
// constants no longer used are skipped by the executor (their use count is
// zero).
type constantFolding struct{}

// Name implements GraphTransformation.
func (constantFolding) Name() string { return "ConstantFolding" }

// Apply implements GraphTransformation.
func (constantFolding) Apply(b *Builder) (bool, error) {
	for _, f := range b.Functions {
		for _, node := range f.Nodes {
			if !foldable(node) {
				continue
			}
			if node.OpType == compute.OpTypeReshape {
				c := node.Inputs[0].Data.(*Buffer) //nolint:errcheck
				data := c.shallowClone()
				data.RawShape = node.Shape.Clone()
				toConstant(node, data)
				continue
			}
			var inBytes uintptr
			inputs := make([]*Buffer, len(node.Inputs))
			for i, in := range node.Inputs {
				inputs[i] = in.Data.(*Buffer) //nolint:errcheck
				inBytes += in.Shape.Memory()
			}
			if node.Shape.Memory() > inBytes+maxFoldedGrowth {
				continue
			}
			executor := nodeExecutors[node.OpType]
			if executor == nil {
				continue
			}
			data, err := executor(b.Backend, node, inputs, make([]bool, len(inputs)))
			if err != nil || data == nil {
				// Left for the run to execute (and report).
				continue
			}
			toConstant(node, data)
		}
	}
	return false, nil
}

// foldable reports whether node's value is known at compilation: a
// single-output op of static shape, without closures, side effects or
// parameters, whose inputs are all constants.
func foldable(node *Node) bool {
	switch node.OpType {
	case compute.OpTypeConstant, compute.OpTypeParameter, compute.OpTypeRNGBitGenerator,
		compute.OpTypeOptimizationBarrier, compute.OpTypeSchedulingBarrier:
		return false
	}
	if len(node.Inputs) == 0 || len(node.CapturedInputs) != 0 || node.IsMultiOutputs() || node.IsNodeSelectOutput ||
		NodeClosureExecutors[node.OpType] != nil || !node.Shape.Ok() || node.Shape.IsDynamic() {
		return false
	}
	for _, in := range node.Inputs {
		if in.OpType != compute.OpTypeConstant || in.Function != node.Function {
			return false
		}
		if _, ok := in.Data.(*Buffer); !ok {
			return false
		}
	}
	return true
}

// toConstant turns node into a constant holding data.
func toConstant(node *Node, data *Buffer) {
	node.OpType = compute.OpTypeConstant
	node.Inputs = nil
	node.Data = data
}
