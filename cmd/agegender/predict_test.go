package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/internal/photos"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// jsonLines parses predict's JSON lines output into maps.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestShardsCoverEachFileOnce: for several n, the n shards of 5000 paths
// are disjoint, cover every path, and are roughly even; then the command
// itself, run as 3 shards with --out over one folder, writes every file
// (photos and skipped files alike) into exactly one of the 3 outputs.
func TestShardsCoverEachFileOnce(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 64} {
		counts := make([]int, n)
		for i := range 5000 {
			p := fmt.Sprintf("archive/%03d/IMG_%05d.jpg", i%97, i)
			in := 0
			for k := uint64(1); k <= n; k++ {
				if photos.InShard(p, k, n) {
					in++
					counts[k-1]++
				}
			}
			if in != 1 {
				t.Fatalf("n=%d: %s is in %d shards", n, p, in)
			}
		}
		for k, c := range counts {
			if mean := 5000 / float64(n); float64(c) < 0.5*mean {
				t.Errorf("n=%d: shard %d has %d paths, mean %.0f", n, k+1, c, mean)
			}
		}
	}

	m := testModels(t)
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	os.MkdirAll(filepath.Join(photos, "sub"), 0o755)
	var want []string
	for i := range 10 {
		p := filepath.Join(photos, fmt.Sprintf("p%d.png", i))
		if i%3 == 0 {
			p = filepath.Join(photos, "sub", fmt.Sprintf("q%d.png", i))
		}
		writePNG(t, p, image.NewGray(image.Rect(0, 0, 32+i, 32)))
		want = append(want, p)
	}
	notes := filepath.Join(photos, "notes.txt")
	os.WriteFile(notes, []byte("not a photo"), 0o644)
	want = append(want, notes)

	seen := map[string]int{}
	for k := 1; k <= 3; k++ {
		out := filepath.Join(dir, fmt.Sprintf("shard%d.jsonl", k))
		stdout, err := capture(t, func() error {
			return cmdPredict(context.Background(), append(m, "--quiet", "--workers", "1", "--shard", fmt.Sprintf("%d/3", k), "--out", out, photos))
		})
		if err != nil || stdout != "" {
			t.Fatalf("shard %d/3: %v, stdout %q (want nothing: lines go to --out)", k, err, stdout)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range jsonLines(t, string(b)) {
			seen[l["file"].(string)]++
		}
	}
	for _, p := range want {
		if seen[p] != 1 {
			t.Errorf("%s appears in %d shard outputs, want exactly 1", p, seen[p])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("the shards wrote %d files, want %d: %v", len(seen), len(want), seen)
	}
}

// heifHeader returns the start of an ISO-BMFF image file with the brand.
func heifHeader(brand string) []byte {
	return []byte("\x00\x00\x00\x18ftyp" + brand + "\x00\x00\x00\x00mif1" + brand + "\x00\x00\x00\x08meta")
}

// TestPredictFileClasses: in a folder, files are chosen by content (a PNG
// without extension is analysed, a text file named .png is not); HEIC and
// AVIF say "format not supported", an empty file "empty file"; each
// skipped file is named with its reason on stderr and in the JSON lines,
// and skipping does not fail the run. Named on the command line, the same
// empty file is a failure.
func TestPredictFileClasses(t *testing.T) {
	m := testModels(t)
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "photo"), image.NewGray(image.Rect(0, 0, 40, 40)))
	os.WriteFile(filepath.Join(dir, "text.png"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "IMG_0001.HEIC"), heifHeader("heic"), 0o644)
	os.WriteFile(filepath.Join(dir, "cat.avif"), heifHeader("avif"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.jpg"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, ".thumbnails"), 0o755)
	writePNG(t, filepath.Join(dir, ".thumbnails", "t.png"), image.NewGray(image.Rect(0, 0, 8, 8)))

	out, err := capture(t, func() error {
		return cmdPredict(context.Background(), append(m, "--json", "--quiet", dir))
	})
	if err != nil {
		t.Fatalf("skipped files made the run fail: %v", err)
	}
	want := map[string]string{
		"photo":         "",
		"text.png":      "not an image",
		"IMG_0001.HEIC": "format not supported: HEIC",
		"cat.avif":      "format not supported: AVIF",
		"empty.jpg":     "empty file",
	}
	lines := jsonLines(t, out)
	if len(lines) != len(want) {
		t.Errorf("%d lines for %d files (the hidden folder must not be searched):\n%s", len(lines), len(want), out)
	}
	for _, l := range lines {
		name := filepath.Base(l["file"].(string))
		reason, ok := want[name]
		if !ok {
			t.Errorf("unexpected file %s", name)
			continue
		}
		errText, _ := l["error"].(string)
		switch {
		case reason == "" && (errText != "" || fmt.Sprint(l["faces"]) != "[]"):
			t.Errorf("%s: want it analysed (no face), got %v", name, l)
		case reason != "" && (!strings.Contains(errText, reason) || l["skipped"] != true):
			t.Errorf("%s: want skipped with %q, got %v", name, reason, l)
		}
	}
	if _, err := capture(t, func() error {
		return cmdPredict(context.Background(), append(m, "--json", "--quiet", filepath.Join(dir, "empty.jpg")))
	}); err == nil {
		t.Error("an empty file named on the command line did not fail the run")
	}
}

// faceJPEGCutout returns testdata/face.jpg (320×400, face box about
// [58 134 200 201]) as an NRGBA cut-out: the person kept inside an ellipse
// around the face, the background fully transparent with hidden colours
// (dark noise), as background-removal tools write it. It also returns the
// cut-out flattened onto white, and the same pixels with the hidden
// colours made opaque (what analysing without flattening would see).
func faceJPEGCutout(t *testing.T) (cut *image.NRGBA, flat *image.RGBA, hidden *image.NRGBA) {
	img, _, err := imageio.DecodeFile(filepath.Join(datatest.RepoRoot(), "testdata", "face.jpg"), imageio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	cut, hidden = image.NewNRGBA(b), image.NewNRGBA(b)
	draw.Draw(cut, b, img, b.Min, draw.Src)
	draw.Draw(hidden, b, img, b.Min, draw.Src)
	flat = image.NewRGBA(b)
	draw.Draw(flat, b, img, b.Min, draw.Src)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dx, dy := float64(x-158)/112, float64(y-234)/125
			if dx*dx+dy*dy <= 1 {
				continue
			}
			v := uint8((x*7919)^(y*104729)) / 4
			cut.SetNRGBA(x, y, color.NRGBA{v, v / 2, v, 0})
			hidden.SetNRGBA(x, y, color.NRGBA{v, v / 2, v, 255})
			flat.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
		}
	}
	return cut, flat, hidden
}

// TestTransparentCutout: an RGBA cut-out gets the answer of its copy
// flattened onto white (boxes, genders, ages, probabilities), the face is
// found in it, and the answer differs from that of the hidden colours (so
// the test would see flattening missing).
func TestTransparentCutout(t *testing.T) {
	m := testModels(t)
	dir := t.TempDir()
	cut, flat, hidden := faceJPEGCutout(t)
	paths := map[string]string{}
	for name, img := range map[string]image.Image{"cut": cut, "flat": flat, "hidden": hidden} {
		paths[name] = filepath.Join(dir, name+".png")
		writePNG(t, paths[name], img)
	}
	out, err := capture(t, func() error {
		return cmdPredict(context.Background(), append(m, "--json", "--quiet", "--tencrop=false", paths["cut"], paths["flat"], paths["hidden"]))
	})
	if err != nil {
		t.Fatal(err)
	}
	answer := map[string]string{} // the lines without their "file" field
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		for name, p := range paths {
			if rest, ok := strings.CutPrefix(l, `{"file":"`+p+`"`); ok {
				answer[name] += rest + "\n"
			}
		}
	}
	if !strings.Contains(answer["flat"], `"box"`) {
		t.Fatalf("no face found in the flattened photo: %s", out)
	}
	if answer["cut"] != answer["flat"] {
		t.Errorf("the cut-out's answer differs from its white-flattened copy's:\ncut-out: %sflat:    %s", answer["cut"], answer["flat"])
	}
	if answer["hidden"] == answer["flat"] {
		t.Errorf("the hidden background gives the same answer as white, so this test cannot tell flattening: %s", answer["hidden"])
	}
}

// TestMaxPixelsDownscales: with --max-pixels below the photo's size the
// photo is downscaled, not refused, and the boxes are still in the full
// photo's pixels (close to those found at full size) and inside it.
func TestMaxPixelsDownscales(t *testing.T) {
	m := testModels(t)
	photo := filepath.Join(datatest.RepoRoot(), "testdata", "face.jpg") // 320×400
	run := func(extra ...string) []map[string]any {
		out, err := capture(t, func() error {
			return cmdPredict(context.Background(), append(append(m, "--json", "--quiet", "--tencrop=false"), append(extra, photo)...))
		})
		if err != nil {
			t.Fatal(err)
		}
		return jsonLines(t, out)
	}
	box := func(lines []map[string]any) []any {
		if len(lines) != 1 {
			t.Fatalf("%d lines for one photo: %v", len(lines), lines)
		}
		faces, _ := lines[0]["faces"].([]any)
		if len(faces) == 0 {
			t.Fatalf("no face: %v", lines)
		}
		return faces[0].(map[string]any)["box"].([]any)
	}
	full, small := run(), run("--max-pixels", "60000") // 219×273
	fb, sb := box(full), box(small)
	for i := range 4 {
		f, s := fb[i].(float64), sb[i].(float64)
		if d := f - s; d > 0.1*fb[2].(float64) || d < -0.1*fb[2].(float64) {
			t.Errorf("box %v at full size, %v downscaled: not in the photo's pixels", fb, sb)
			break
		}
	}
	if x, y, w, h := sb[0].(float64), sb[1].(float64), sb[2].(float64), sb[3].(float64); x < 0 || y < 0 || x+w > 320 || y+h > 400 {
		t.Errorf("box %v reaches outside the 320×400 photo", sb)
	}
}
