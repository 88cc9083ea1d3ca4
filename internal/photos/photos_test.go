package photos

import (
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agegender/agegender"
	"github.com/rivo/uniseg"
)

func TestParseShard(t *testing.T) {
	for _, s := range []string{"1/1", "3/8", "8/8"} {
		if _, _, err := ParseShard(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"0/4", "5/4", "1/0", "3", "a/b", "1/2/3", "-1/2"} {
		if _, _, err := ParseShard(s); err == nil || !strings.Contains(err.Error(), "1 ≤ k ≤ n") {
			t.Errorf("%q accepted or unclear: %v", s, err)
		}
	}
}

// TestCellWideCharacters: table cells are padded and cut by display width
// (CJK and emoji take two cells), never inside a character or a grapheme.
func TestCellWideCharacters(t *testing.T) {
	for _, s := range []string{
		"photos/face.jpg",
		"写真/家族/おばあちゃんの誕生日パーティー/IMG_0001.jpg",
		"famille/👨‍👩‍👧‍👦/été à la plage/IMG_0002.jpg",
		"e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301.png",
		"한국어/사진/서울/가족/여름휴가/바닷가에서/IMG_0003.jpg",
	} {
		for _, width := range []int{40, 21, 8} {
			c := Cell(s, width)
			if !utf8.ValidString(c) {
				t.Errorf("Cell(%q, %d) = %q: invalid UTF-8", s, width, c)
			}
			if w := uniseg.StringWidth(c); w != width {
				t.Errorf("Cell(%q, %d) = %q is %d cells wide", s, width, c, w)
			}
			if uniseg.StringWidth(s) > width && !strings.HasPrefix(c, "…") {
				t.Errorf("Cell(%q, %d) = %q: cut without a mark", s, width, c)
			}
		}
	}
	if c := Cell("写真/a.jpg", 12); c != "写真/a.jpg  " {
		t.Errorf("short wide name padded to %q", c)
	}
}

// TestAnnotateMirrorsFolders: annotated copies of files found in a folder
// keep their sub-folder below --annotate's folder; files named directly
// go to its top; equal names get -2, -3; a name keeps its extension when
// it fits the written format and gets one added otherwise.
func TestAnnotateMirrorsFolders(t *testing.T) {
	in := t.TempDir()
	for _, f := range []string{"x.jpg", "sub/x.jpg", "sub/deeper/y.png", "x.heic", "z.webp", "w.JPEG"} {
		if err := os.MkdirAll(filepath.Join(in, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := Expand([]string{in, filepath.Join(in, "sub", "x.jpg")}, func(string, ...any) {})
	out := t.TempDir()
	p := NewPrinter(io.Discard, true, out)
	for _, f := range files {
		format := "png"
		if ext := filepath.Ext(f.Path); ext == ".jpg" || ext == ".heic" || ext == ".JPEG" {
			format = "jpeg" // the .heic is a JPEG by its content
		}
		res := &agegender.Result{Image: image.NewRGBA(image.Rect(0, 0, 8, 8)), Width: 8, Height: 8, Format: format}
		path, err := p.writeAnnotated(Result{File: f.Path, Rel: f.Rel, Res: res})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: returned path %s: %v", f.Path, path, err)
		}
	}
	for _, want := range []string{"x.jpg", "sub/x.jpg", "sub/deeper/y.png", "x-2.jpg", "x.heic.jpg", "z.webp.png", "w.JPEG"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("%s not written: %v (inputs %+v)", want, err, files)
		}
	}
}

// TestAnnotateNeverReplacesInputs: an --annotate folder inside an input
// folder is refused before anything is written, and a copy that would
// land on its own input photo is an error, the photo untouched.
func TestAnnotateNeverReplacesInputs(t *testing.T) {
	in := t.TempDir()
	photo := filepath.Join(in, "x.jpg")
	if err := os.WriteFile(photo, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{in, filepath.Join(in, "out"), filepath.Join(in, ".")} {
		if err := CheckAnnotate(dir, []string{in}); err == nil {
			t.Errorf("--annotate %s with input folder %s accepted", dir, in)
		}
	}
	if err := CheckAnnotate(t.TempDir(), []string{in, photo}); err != nil {
		t.Errorf("a folder outside the inputs refused: %v", err)
	}
	p := NewPrinter(io.Discard, true, in)
	res := &agegender.Result{Image: image.NewRGBA(image.Rect(0, 0, 8, 8)), Width: 8, Height: 8, Format: "jpeg"}
	if _, err := p.writeAnnotated(Result{File: photo, Res: res}); err == nil || !strings.Contains(err.Error(), "over the input") {
		t.Errorf("annotating %s into its own folder: %v, want an error", photo, err)
	}
	if b, _ := os.ReadFile(photo); string(b) != "original" {
		t.Errorf("the input photo was replaced")
	}
}
