//go:build xla

package backend

import _ "github.com/gomlx/go-xla/compute/xla" // XLA through a PJRT plugin (GPU), "xla"
