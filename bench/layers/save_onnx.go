//go:build onnx

package main

import (
	"os"

	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// keepModels asks the ONNX Runtime backend to keep each compiled model so
// that saveModel can write it (for ONNX Runtime's own per-node profiler).
func keepModels(b compute.Backend) {
	if ob, ok := b.(*onnxbackend.Backend); ok {
		ob.SetKeepModelProto(true)
	}
}

// saveModel writes the ONNX model that e compiles to for the given shapes.
func saveModel(b compute.Backend, e *Exec, path string, in ...shapes.Shape) error {
	g, err := e.Compile(in...)
	if err != nil {
		return err
	}
	return saveGraph(b, g, path)
}

// saveGraph writes the ONNX model of the compiled graph g.
func saveGraph(b compute.Backend, g *Graph, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := onnxbackend.SaveModel(b, g.Executable(), f, nil, nil); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
