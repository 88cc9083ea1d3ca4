package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/internal/testmodel"
)

// capture runs f with stdout redirected and returns what it printed.
func capture(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(r)
		done <- b.Bytes()
	}()
	ferr := f()
	w.Close()
	os.Stdout = old
	return string(<-done), ferr
}

func testModels(t *testing.T) []string {
	g, a, err := testmodel.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return []string{"--gender-model", g, "--age-model", a}
}

// TestPredictBadInputs: an empty folder, a folder of non-images, a corrupt
// image and a missing file each give a clear error naming the input, the
// good inputs are still answered, and the command fails at the end.
// TestPredictStdin analyses a photo given as "-" on standard input, and
// reports a non-image there as a failure of "-" (in JSON; stderr names
// standard input).
func TestPredictStdin(t *testing.T) {
	m := testModels(t)
	stdin := os.Stdin
	defer func() { os.Stdin = stdin }()
	var err error
	if os.Stdin, err = os.Open("../../testdata/face.jpg"); err != nil {
		t.Fatal(err)
	}
	out, err := capture(t, func() error { return cmdPredict(context.Background(), append(m, "--json", "-")) })
	if err != nil || !strings.HasPrefix(out, `{"file":"-","width":320,"height":400,"faces":[{`) {
		t.Errorf("photo on standard input: err %v, output %q", err, out)
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("hello"), 0o644)
	if os.Stdin, err = os.Open(text); err != nil {
		t.Fatal(err)
	}
	out, err = capture(t, func() error { return cmdPredict(context.Background(), append(m, "--json", "-")) })
	if err == nil || !strings.Contains(out, `"file":"-","error":"not an image`) {
		t.Errorf("text on standard input: err %v, output %q; want a failure of file \"-\"", err, out)
	}
}

func TestPredictBadInputs(t *testing.T) {
	m := testModels(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	junk := filepath.Join(dir, "junk")
	os.Mkdir(junk, 0o755)
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(junk, "fake.jpg"), []byte("not a jpeg at all"), 0o644)
	good := filepath.Join(dir, "blank.png")
	f, _ := os.Create(good)
	png.Encode(f, image.NewGray(image.Rect(0, 0, 64, 64)))
	f.Close()

	out, err := capture(t, func() error { return cmdPredict(context.Background(), append(m, "--json", empty)) })
	if err == nil || out != "" {
		t.Errorf("empty folder: err %v, output %q; want a failure and no output", err, out)
	}
	out, err = capture(t, func() error {
		return cmdPredict(context.Background(), append(m, "--json", junk, good, filepath.Join(dir, "missing.jpg")))
	})
	if err == nil {
		t.Fatal("corrupt and missing inputs did not make predict fail")
	}
	if !strings.Contains(out, `"file":"`+good+`"`) || !strings.Contains(out, `"faces":[]`) {
		t.Errorf("the good input was not answered (a blank image has no face): %q", out)
	}
	// Files found in a folder are chosen by content: notes.txt and the
	// fake .jpg are skipped, each with a line saying why (naming the file
	// once, in "file").
	for _, name := range []string{"notes.txt", "fake.jpg"} {
		want := `{"file":"` + filepath.Join(junk, name) + `","error":"not an image: not a JPEG, PNG, GIF, BMP or WebP file","skipped":true}`
		if !strings.Contains(out, want+"\n") {
			t.Errorf("%s was not reported as skipped (want %s): %q", name, want, out)
		}
	}
}

// TestEvalJSON runs `eval --json --calibrate` with the built-in age model on
// 40 real test faces: one JSON object with both crop modes, the group
// breakdown and the calibration, and the confusion-matrix PNG written.
func TestEvalJSON(t *testing.T) {
	datatest.SharedDir(t, "utkface/images")
	dir := t.TempDir()
	png := filepath.Join(dir, "confusion.png")
	out, err := capture(t, func() error {
		return cmdEval(context.Background(), []string{"--task", "age", "--limit", "40", "--json",
			"--data", filepath.Join(datatest.RepoRoot(), "..", "shared", "data", "utkface", "images"),
			"--confusion", png, "--calibrate", filepath.Join(dir, "cal.agm")})
	})
	if err != nil {
		t.Fatal(err)
	}
	type report struct {
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
		OneOff   float64 `json:"one_off"`
	}
	var res struct {
		Center      report            `json:"center"`
		TenCrop     report            `json:"ten_crop"`
		Groups      []json.RawMessage `json:"groups"`
		Temperature float64           `json:"temperature"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if res.Center.N != 40 || res.TenCrop.N != 40 || res.Center.OneOff < res.Center.Accuracy || len(res.Groups) == 0 || res.Temperature <= 0 {
		t.Errorf("unexpected report: centre %+v, 10-crop %+v, %d groups, temperature %g", res.Center, res.TenCrop, len(res.Groups), res.Temperature)
	}
	for _, f := range []string{png, filepath.Join(dir, "cal.agm")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// TestErrorLine: a library error, already prefixed "agegender: ", is not
// prefixed twice; any other error is prefixed once.
func TestErrorLine(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{"agegender: no such model", "agegender: no such model"},
		{"pipeline: no images", "agegender: pipeline: no images"},
	} {
		if got := errorLine(errors.New(c.err)); got != c.want {
			t.Errorf("errorLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
