// Package datatest helps tests find the read-only shared data sets.
//
// The shared data lives at ../shared/data relative to the repository root
// (the folder holding go.mod). Tests call [SharedDir] and are skipped, with
// a message saying where the data was looked for, when it is absent.
package datatest

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the folder that holds
// go.mod. It returns "" if there is none.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// SharedDir returns the shared data subfolder rel (for example
// "utkface/images"), or skips the test if it does not exist.
func SharedDir(t testing.TB, rel string) string {
	t.Helper()
	root := RepoRoot()
	if root == "" {
		t.Skip("shared data: no go.mod found above the working directory")
	}
	dir := filepath.Join(root, "..", "shared", "data", filepath.FromSlash(rel))
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared data %s not present (%v); put the data sets at ../shared/data next to the repository to run this test", dir, err)
	}
	return dir
}
