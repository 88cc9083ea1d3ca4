// Package datatest helps tests find the read-only shared data sets.
//
// The data folder is internal/dataroot's: AGEGENDER_DATA, default
// ../shared/data; a relative setting is taken from the repository root (the
// folder holding go.mod), whatever package directory the test runs in. The
// pretrained models are in models/ beside it. A test that needs data calls
// [SharedDir], [Shared] or [UTKFace]; when the data is absent it is skipped
// with a message saying where the data was looked for — or, when
// AGEGENDER_REQUIRE_DATA=1 (as in CI), it fails, so missing data cannot pass
// for a green run.
package datatest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/agegender/agegender/internal/dataroot"
)

// RequireEnv is the environment variable that turns a skip for missing
// data into a failure when set to "1".
const RequireEnv = "AGEGENDER_REQUIRE_DATA"

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

// Missing skips the test because data it needs is absent, or fails it
// when AGEGENDER_REQUIRE_DATA=1. format and args say what is missing and
// where it was looked for.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("missing data with "+RequireEnv+"=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

// dataDir returns the data folder, a relative one resolved from the
// repository root.
func dataDir(t testing.TB) string {
	t.Helper()
	d := dataroot.Dir()
	if filepath.IsAbs(d) {
		return d
	}
	root := RepoRoot()
	if root == "" {
		Missing(t, "no go.mod above the working directory to resolve %s=%s from", dataroot.Env, d)
	}
	return filepath.Join(root, d)
}

// Shared returns rel inside the shared folder (for example "models/tfjs"
// or "data/utkface/images"), or skips the test if it does not exist (see
// [Missing]). "data/…" is inside the data folder, anything else beside it.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	var dir string
	if rest, ok := strings.CutPrefix(rel, "data/"); ok || rel == "data" {
		dir = filepath.Join(dataDir(t), filepath.FromSlash(rest))
	} else {
		dir = filepath.Join(filepath.Dir(dataDir(t)), filepath.FromSlash(rel))
	}
	if _, err := os.Stat(dir); err != nil {
		Missing(t, "shared data %s not present (%v); set %s to the data folder to run this test", dir, err, dataroot.Env)
	}
	return dir
}

// SharedDir returns the data subfolder rel (for example "utkface/images"),
// or skips the test if it does not exist (see [Missing]).
func SharedDir(t testing.TB, rel string) string {
	t.Helper()
	dir := filepath.Join(dataDir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(dir); err != nil {
		Missing(t, "data %s not present (%v); set %s to the data folder to run this test", dir, err, dataroot.Env)
	}
	return dir
}

// UTKFace returns the first UTKFace image of a 30-year-old man (a clear,
// adult face), or skips the test if the data set is absent (see [Missing]).
func UTKFace(t testing.TB) string {
	t.Helper()
	dir := SharedDir(t, "utkface/images")
	names, _ := filepath.Glob(filepath.Join(dir, "30_0_0_*.jpg"))
	if len(names) == 0 {
		Missing(t, "no 30_0_0_*.jpg in %s", dir)
	}
	sort.Strings(names)
	return names[0]
}
