//go:build !onnx

package main

import (
	"errors"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

func keepModels(compute.Backend) {}

func saveModel(compute.Backend, *Exec, string, ...shapes.Shape) error {
	return errors.New("--save needs a binary built with -tags onnx")
}

func saveGraph(compute.Backend, *Graph, string) error {
	return errors.New("--save needs a binary built with -tags onnx")
}
