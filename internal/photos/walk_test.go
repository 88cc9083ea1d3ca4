package photos

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestWalkSkipsPipes: a named pipe in a folder is skipped, not opened
// (opening one with no writer waits forever), and so is a symlinked
// folder; a symlink to a file is kept.
func TestWalkSkipsPipes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.jpg"), 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.jpg")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.Symlink(other, filepath.Join(dir, "folder")); err != nil {
		t.Fatal(err)
	}
	var failed []string
	files := walkFiles(dir, func(f string, a ...any) { failed = append(failed, f) })
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f.Path))
	}
	if len(names) != 2 || names[0] != "a.jpg" || names[1] != "b.jpg" || len(failed) != 0 {
		t.Errorf("walk found %v (failures %v); want a.jpg and the link b.jpg only", names, failed)
	}
}

// TestExpandGlobs: "*" matches within one folder and a folder it matches
// is walked; "**" matches any number of folders (none included), each
// file once.
func TestExpandGlobs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.jpg", "b.png", "sub/c.jpg", "sub/deeper/d.jpg"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pattern, want := range map[string][]string{
		"*.jpg":       {"a.jpg"},
		"*":           {"a.jpg", "b.png", "sub/c.jpg", "sub/deeper/d.jpg"},
		"**/*.jpg":    {"a.jpg", "sub/c.jpg", "sub/deeper/d.jpg"},
		"**":          {"a.jpg", "b.png", "sub/c.jpg", "sub/deeper/d.jpg"},
		"sub/**/*":    {"sub/c.jpg", "sub/deeper/d.jpg"},
		"*.{jpg,png}": {"a.jpg", "b.png"},
	} {
		files, _ := Expand([]string{filepath.Join(dir, pattern)}, func(f string, a ...any) { t.Errorf(f, a...) })
		var got []string
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f.Path)
			got = append(got, filepath.ToSlash(rel))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", pattern, got, want)
		}
	}
}
