package tfjs

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
)

// NewExec returns an executor of the model on backend with a single input
// (the placeholder named input; "" picks the model's only placeholder)
// and the given outputs. Call it with a float32 tensor [batch, ...]: GoMLX
// compiles the graph once per distinct input shape. It runs forward passes
// only, so the graph is built for inference ([BuildOptions.Inference]:
// batch norms folded, weights as constants).
//
// The graph is built when the executor is first called; a problem with
// the model (an unsupported op, a wrong input shape) is the error of that
// call.
func (m *Graph) NewExec(backend compute.Backend, input string, outputs ...string) (*graph.Exec, error) {
	if input == "" {
		if len(m.Placeholders) != 1 {
			return nil, fmt.Errorf("tfjs: %s: the model has %d placeholders; name the input", m.Path, len(m.Placeholders))
		}
		input = m.Placeholders[0].Name
	}
	if len(outputs) == 0 {
		outputs = m.Outputs
	}
	for _, o := range outputs {
		if m.Node(o) == nil {
			return nil, fmt.Errorf("tfjs: %s: no output node %q", m.Path, o)
		}
	}
	return graph.NewExec(backend, func(x *graph.Node) []*graph.Node {
		outs, err := m.BuildWith(x.Graph(), map[string]*graph.Node{input: x}, outputs, BuildOptions{Inference: true})
		if err != nil {
			panic(err)
		}
		return outs
	})
}
