//go:build !nobuiltin

package models

import "embed"

// builtin holds the files under builtin/. Build with -tags nobuiltin for a
// binary without them (bench/gpu does, to fit a device call): Builtin then
// answers that the binary has no built-in model.
//
//go:embed builtin
var builtin embed.FS
