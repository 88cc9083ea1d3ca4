package datatest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/agegender/agegender/internal/dataroot"
)

// recorder is a testing.TB whose Skipf and Fatalf record the outcome and
// end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	outcome string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(string, ...any) {
	r.outcome = "skip"
	runtime.Goexit()
}
func (r *recorder) Fatalf(string, ...any) {
	r.outcome = "fail"
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own and returns the
// outcome: "skip", "fail" or "ok".
func run(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t, outcome: "ok"}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.outcome
}

func TestMissingDataSkipsOrFails(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(dataroot.Env, filepath.Join(empty, "data"))
	for _, c := range []struct {
		require, want string
	}{{"", "skip"}, {"0", "skip"}, {"1", "fail"}} {
		t.Setenv(RequireEnv, c.require)
		for name, f := range map[string]func(testing.TB){
			"SharedDir": func(t testing.TB) { SharedDir(t, "utkface/images") },
			"Shared":    func(t testing.TB) { Shared(t, "models/tfjs") },
			"UTKFace":   func(t testing.TB) { UTKFace(t) },
		} {
			if got := run(t, f); got != c.want {
				t.Errorf("%s with %s=%q and no data: %s, want %s", name, RequireEnv, c.require, got, c.want)
			}
		}
	}
}

func TestFindsDataUnderSetting(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"data/utkface/images", "models/tfjs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	face := filepath.Join(root, "data/utkface/images/30_0_0_20170117.jpg")
	if err := os.WriteFile(face, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(dataroot.Env, filepath.Join(root, "data"))
	t.Setenv(RequireEnv, "1")
	if got, want := SharedDir(t, "utkface/images"), filepath.Join(root, "data/utkface/images"); got != want {
		t.Errorf("SharedDir = %q, want %q", got, want)
	}
	if got, want := Shared(t, "data/utkface/images"), filepath.Join(root, "data/utkface/images"); got != want {
		t.Errorf("Shared(data/…) = %q, want %q", got, want)
	}
	if got, want := Shared(t, "models/tfjs"), filepath.Join(root, "models/tfjs"); got != want {
		t.Errorf("Shared(models/…) = %q, want %q", got, want)
	}
	if got := UTKFace(t); got != face {
		t.Errorf("UTKFace = %q, want %q", got, face)
	}
}

func TestRelativeSettingFromRepoRoot(t *testing.T) {
	t.Setenv(dataroot.Env, "testdata-nowhere")
	if got, want := dataDir(t), filepath.Join(RepoRoot(), "testdata-nowhere"); got != want {
		t.Errorf("dataDir = %q, want %q (relative to the repository root)", got, want)
	}
}
