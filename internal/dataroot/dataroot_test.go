package dataroot

import (
	"path/filepath"
	"testing"
)

func TestPaths(t *testing.T) {
	for _, c := range []struct {
		env, data, utk, tfjs string
	}{
		{"", "../shared/data", "../shared/data/utkface/images", "../shared/models/tfjs"},
		{"/srv/ag/data/", "/srv/ag/data", "/srv/ag/data/utkface/images", "/srv/ag/models/tfjs"},
		{"elsewhere", "elsewhere", "elsewhere/utkface/images", "models/tfjs"},
	} {
		t.Setenv(Env, c.env)
		if got := filepath.ToSlash(Dir()); got != c.data {
			t.Errorf("%s=%q: Dir() = %q, want %q", Env, c.env, got, c.data)
		}
		if got := filepath.ToSlash(Path("utkface/images")); got != c.utk {
			t.Errorf("%s=%q: Path = %q, want %q", Env, c.env, got, c.utk)
		}
		if got := filepath.ToSlash(Models("tfjs")); got != c.tfjs {
			t.Errorf("%s=%q: Models = %q, want %q", Env, c.env, got, c.tfjs)
		}
	}
}
