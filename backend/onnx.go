//go:build onnx

package backend

import _ "github.com/gomlx/compute-onnx" // ONNX Runtime backend, "onnx"
