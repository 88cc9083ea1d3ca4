//go:build nobuiltin

package models

import "embed"

// builtin is empty in a binary built with -tags nobuiltin (see embed.go).
var builtin embed.FS
