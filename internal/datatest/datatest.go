// Package datatest helps tests find the read-only shared data sets.
//
// The shared data lives at ../shared/data relative to the repository root
// (the folder holding go.mod). Tests call [SharedDir] and are skipped, with
// a message saying where the data was looked for, when it is absent.
package datatest

import (
	"os"
	"path/filepath"
	"sort"
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

// Shared returns the folder rel under ../shared (for example
// "models/tfjs" or "data/utkface/images"), or skips the test if it does
// not exist.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	root := RepoRoot()
	if root == "" {
		t.Skip("shared data: no go.mod found above the working directory")
	}
	dir := filepath.Join(root, "..", "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared data %s not present (%v); put ../shared next to the repository to run this test", dir, err)
	}
	return dir
}

// SharedDir returns the shared data subfolder rel (for example
// "utkface/images"), or skips the test if it does not exist.
func SharedDir(t testing.TB, rel string) string {
	t.Helper()
	return Shared(t, "data/"+rel)
}

// UTKFace returns the first UTKFace image of a 30-year-old man (a clear,
// adult face), or skips the test if the data set is absent.
func UTKFace(t testing.TB) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(SharedDir(t, "utkface/images"), "30_0_0_*.jpg"))
	if len(names) == 0 {
		t.Skip("no 30_0_0_*.jpg in the UTKFace folder")
	}
	sort.Strings(names)
	return names[0]
}
