package photos

import (
	"os"
	"path/filepath"
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
