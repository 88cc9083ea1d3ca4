//go:build !onnx

package main

import (
	"errors"

	"github.com/gomlx/compute"
)

func floor(compute.Backend, string, int) error {
	return errors.New("--floor needs the ONNX Runtime build: CGO_ENABLED=1 go run -tags onnx ./bench/detect --backend onnx --floor DIR")
}
