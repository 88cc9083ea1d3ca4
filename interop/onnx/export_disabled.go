//go:build !onnx

package onnx

import (
	"errors"

	"github.com/agegender/agegender/model"
	"github.com/gomlx/compute"
)

// Available reports whether this binary can export ONNX.
const Available = false

// Export needs the ONNX Runtime backend: build with -tags onnx (./setup.sh
// does when it installed ONNX Runtime).
func Export(ortBackend, goBackend compute.Backend, m *model.Model, path string, batch int) (float64, error) {
	return 0, errors.New("ONNX export needs a binary built with -tags onnx: run ./setup.sh (with npm available, it installs ONNX Runtime and builds ./agegender with it)")
}
