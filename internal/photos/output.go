package photos

import (
	"encoding/json"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agegender/agegender"
	"github.com/rivo/uniseg"
)

// Printer writes results as a table or JSON lines, and annotated copies.
type Printer struct {
	w        io.Writer
	json     bool
	annotate string
	used     map[string]bool // annotated file names already written
	header   bool            // the table's header is written
}

// NewPrinter returns a Printer that writes to w a table (its header
// before the first row, so a run whose every input fails prints none) or,
// with asJSON, JSON lines, and with annotate (a folder) also each photo
// with its faces drawn.
func NewPrinter(w io.Writer, asJSON bool, annotate string) *Printer {
	return &Printer{w: w, json: asJSON, annotate: annotate, used: map[string]bool{}}
}

const tableFormat = "%s %4s  %-21s %-6s %6s  %-9s %6s  %s\n"

// fileColumn is the width of the table's FILE column in terminal cells.
const fileColumn = 40

// fileLine is one JSON line of a photo: the file's name and the library's
// agegender.Result, so that a face has the same JSON form as in the
// library and the HTTP service (see agegender.Face), in the photo's
// pixels, and a photo without faces has "faces": [].
type fileLine struct {
	File string `json:"file"`
	// Annotated is where --annotate wrote the photo's annotated copy.
	Annotated string `json:"annotated,omitempty"`
	*agegender.Result
}

// errorLine is the JSON line of a file that was skipped or failed.
type errorLine struct {
	File    string `json:"file"`
	Error   string `json:"error"`
	Skipped bool   `json:"skipped"`
}

// PrintError writes r's error as a JSON line in the JSON mode, so that
// every input appears in the output; the table shows errors on stderr only.
func (p *Printer) PrintError(r Result) error {
	if !p.json {
		return nil
	}
	// The line names the file once: in "file", not again in "error".
	name := r.File
	if name == Stdin {
		name = stdinName
	}
	msg := strings.TrimPrefix(r.Err.Error(), name+": ")
	return json.NewEncoder(p.w).Encode(errorLine{File: r.File, Error: msg, Skipped: r.Skipped})
}

// Print writes r, and its annotated copy.
func (p *Printer) Print(r Result) error {
	var annotated string
	var aerr error
	if p.annotate != "" && r.Res.Image != nil {
		annotated, aerr = p.writeAnnotated(r)
	}
	if p.json {
		if err := json.NewEncoder(p.w).Encode(fileLine{File: r.File, Annotated: annotated, Result: r.Res}); err != nil {
			return err
		}
	} else {
		if !p.header {
			fmt.Fprintf(p.w, tableFormat, Cell("FILE", fileColumn), "FACE", "BOX (x,y w×h)", "GENDER", "PROB", "AGE", "PROB", "YEARS")
			p.header = true
		}
		name := Cell(r.File, fileColumn)
		if len(r.Res.Faces) == 0 {
			fmt.Fprintf(p.w, tableFormat, name, "-", "no face found", "", "", "", "", "")
		}
		for _, f := range r.Res.Faces {
			box := fmt.Sprintf("%d,%d %d×%d", f.Box.Min.X, f.Box.Min.Y, f.Box.Dx(), f.Box.Dy())
			years := ""
			if f.HasAge() {
				years = fmt.Sprintf("%.0f ± %.0f", f.Age, f.AgeStd)
			}
			fmt.Fprintf(p.w, tableFormat, name, strconv.Itoa(f.Index), box, f.Gender,
				pct(f.GenderProb), f.AgeGroup, pct(f.AgeProb()), years)
		}
	}
	return aerr
}

// pct writes a probability as a percentage with one decimal, never
// rounding a value short of certainty up to "100.0%".
func pct(p float32) string {
	if p > 0.999 && p < 1 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", 100*p)
}

// Count writes n and the noun, plural unless n is 1.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeAnnotated saves r's image with its faces drawn and returns its
// path: JPEG for JPEG inputs, PNG otherwise; the image analysed, so
// downscaled when the photo was over --max-pixels. A copy keeps the
// input's name when its extension fits the format (x.jpg, x.JPEG, y.png)
// and otherwise adds one (x.heic.jpg, z.webp.png, stdin.jpg), in the
// sub-folder it was found in below a folder given on the command line
// (a/b/x.png → DIR/b/x.png for input a); a name already written gets -2,
// -3 before its extension (x-2.jpg). JSON lines give each copy's path.
func (p *Printer) writeAnnotated(r Result) (string, error) {
	ext, name := ".png", filepath.Base(r.File)
	if r.Res.Format == "jpeg" {
		ext = ".jpg"
	}
	if r.File == Stdin {
		name = "stdin"
	}
	switch in := strings.ToLower(filepath.Ext(name)); {
	case ext == ".jpg" && (in == ".jpg" || in == ".jpeg"), ext == ".png" && in == ".png":
		ext = filepath.Ext(name)
	default:
		name += ext
	}
	base := strings.TrimSuffix(name, ext)
	sub := ""
	if r.Rel != "" && filepath.IsLocal(r.Rel) {
		sub = filepath.Dir(r.Rel)
	}
	name = filepath.Join(sub, name)
	for i := 2; p.used[name]; i++ {
		name = filepath.Join(sub, fmt.Sprintf("%s-%d%s", base, i, ext))
	}
	p.used[name] = true
	path := filepath.Join(p.annotate, name)
	if out, err := os.Stat(path); err == nil {
		if in, err := os.Stat(r.File); err == nil && os.SameFile(in, out) {
			return "", fmt.Errorf("predict: --annotate would write over the input photo %s; choose a folder outside the inputs", r.File)
		}
	}
	if sub != "." && sub != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("predict: --annotate: %w", err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("predict: --annotate: %w", err)
	}
	img := r.Res.Annotate()
	if r.Res.Format == "jpeg" {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(f, img)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("predict: writing %s: %w", path, err)
	}
	return path, nil
}

// Cell fits s into a table column width terminal cells wide: padded with
// spaces, or cut at the left behind "…" when too wide. Widths are display
// widths (uniseg: East Asian wide characters and emoji take two cells,
// combining marks none), and cuts fall between grapheme clusters.
func Cell(s string, width int) string {
	w := uniseg.StringWidth(s)
	if w <= width {
		return s + strings.Repeat(" ", width-w)
	}
	// Keep the longest tail of whole graphemes that fits after "…".
	var clusters []string
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		clusters = append(clusters, g.Str())
	}
	tail, tw := "", 0
	for i := len(clusters) - 1; i >= 0; i-- {
		cw := uniseg.StringWidth(clusters[i])
		if tw+cw > width-1 {
			break
		}
		tail, tw = clusters[i]+tail, tw+cw
	}
	return "…" + tail + strings.Repeat(" ", width-1-tw)
}

// CheckAnnotate refuses an --annotate folder that is an input folder or
// lies inside one: its copies would replace photos of the same name, and
// the next run would read them as photos.
func CheckAnnotate(dir string, inputs []string) error {
	ad, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("predict: --annotate %s: %w", dir, err)
	}
	for _, in := range inputs {
		if st, err := os.Stat(in); err != nil || !st.IsDir() {
			continue
		}
		id, err := filepath.Abs(in)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(id, ad); err == nil && filepath.IsLocal(rel) {
			return fmt.Errorf("predict: --annotate %s is inside the input folder %s: the annotated copies would replace its photos or be read as photos next time; choose a folder outside the inputs", dir, in)
		}
	}
	return nil
}
