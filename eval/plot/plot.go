// Package plot draws the figures of an evaluation as PNG files: confusion
// matrices, training curves and reliability diagrams, with
// gonum.org/v1/plot. It is kept apart from package eval so that programs
// that only compute metrics (and the agegender library, which needs none)
// do not link a plotting library, its fonts and its PDF and LaTeX
// back-ends. Files are written atomically (internal/atomicfile): a reader
// never sees a half-written PNG, and each file has mode 0644.
package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/internal/atomicfile"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// pngDPI is the resolution of every PNG the package writes; a plot w
// points wide becomes w/72*pngDPI pixels wide.
const pngDPI = 96

// Sizes of the figures.
const (
	curvesWidth       = 7 * vg.Inch
	curvesHeight      = 4.5 * vg.Inch
	reliabilitySide   = 5 * vg.Inch
	confusionMinSide  = 4 * vg.Inch
	confusionCellSide = 0.75 * vg.Inch
	confusionMargin   = 1.75 * vg.Inch
)

// confusionSide returns the width and height of a confusion-matrix figure
// for k classes: roomy cells plus a margin for the axis labels.
func confusionSide(k int) vg.Length {
	return max(confusionMinSide, confusionMargin+vg.Length(k)*confusionCellSide)
}

// SaveConfusionPNG draws the report's confusion matrix as a heat map and
// writes it to path as a PNG.
//
// Each row is normalised by the number of examples of that true class, so
// the diagonal shows per-class recall and the colours are comparable
// between frequent and rare classes. Each cell is labelled with its row
// percentage and raw count. True classes run down the vertical axis (the
// first class at the top) and predicted classes along the horizontal axis.
func SaveConfusionPNG(r eval.Report, path string) error {
	k := len(r.ClassNames)
	if k == 0 {
		return errors.New("plot: SaveConfusionPNG: report has no classes")
	}
	if len(r.Confusion) != k {
		return fmt.Errorf("plot: SaveConfusionPNG: confusion matrix has %d rows for %d classes", len(r.Confusion), k)
	}
	for t, row := range r.Confusion {
		if len(row) != k {
			return fmt.Errorf("plot: SaveConfusionPNG: confusion row %d has %d columns for %d classes", t, len(row), k)
		}
	}

	grid := newConfusionGrid(r.Confusion)
	cmap := palette.Reverse(moreland.Kindlmann()) // white (0%) to near-black (100%)
	cmap.SetMin(0)
	cmap.SetMax(1)
	heat := plotter.NewHeatMap(grid, cmap.Palette(256))
	heat.Min, heat.Max = 0, 1

	// One label per cell, centred, dark text on light cells and white
	// text on dark ones.
	xy := plotter.XYLabels{XYs: make(plotter.XYs, 0, k*k), Labels: make([]string, 0, k*k)}
	var colors []color.Color
	for t, row := range r.Confusion {
		for p, count := range row {
			frac := grid.frac[t][p]
			xy.XYs = append(xy.XYs, plotter.XY{X: float64(p), Y: float64(k - 1 - t)})
			xy.Labels = append(xy.Labels, fmt.Sprintf("%.0f%%\n(%d)", 100*frac, count))
			if frac > 0.45 {
				colors = append(colors, color.White)
			} else {
				colors = append(colors, color.Black)
			}
		}
	}
	labels, err := plotter.NewLabels(xy)
	if err != nil {
		return fmt.Errorf("plot: SaveConfusionPNG: %w", err)
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Color = colors[i]
		labels.TextStyle[i].XAlign = text.XCenter
		labels.TextStyle[i].YAlign = text.YCenter
		labels.TextStyle[i].Font = font.From(plotter.DefaultFont, vg.Points(9))
	}

	p := gplot.New()
	p.Title.Text = fmt.Sprintf("%s: confusion matrix (accuracy %.1f%%, n=%d)", r.Task, 100*r.Accuracy, r.N)
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	p.Add(heat, labels)
	p.NominalX(r.ClassNames...)
	top := make([]string, k) // row 0 of the grid is the last class
	for i, name := range r.ClassNames {
		top[k-1-i] = name
	}
	p.NominalY(top...)
	p.X.Min, p.X.Max = -0.5, float64(k)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(k)-0.5

	side := confusionSide(k)
	return savePNG(p, side, side, path)
}

// confusionGrid adapts a row-normalised confusion matrix to
// plotter.GridXYZ. Grid column c is predicted class c; grid row r is true
// class k-1-r, so that the first class is drawn at the top.
type confusionGrid struct {
	frac [][]float64 // frac[true][pred], rows sum to 1 (or are all 0)
}

func newConfusionGrid(conf [][]int) confusionGrid {
	frac := make([][]float64, len(conf))
	for t, row := range conf {
		frac[t] = make([]float64, len(row))
		total := 0
		for _, v := range row {
			total += v
		}
		if total == 0 {
			continue
		}
		for p, v := range row {
			frac[t][p] = float64(v) / float64(total)
		}
	}
	return confusionGrid{frac: frac}
}

func (g confusionGrid) Dims() (c, r int)   { return len(g.frac), len(g.frac) }
func (g confusionGrid) Z(c, r int) float64 { return g.frac[len(g.frac)-1-r][c] }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }

// Curve is one named series of a line plot, such as the training loss per
// epoch. X and Y must have the same, non-zero length.
type Curve struct {
	Name string
	X    []float64
	Y    []float64
}

// SaveCurvesPNG draws one or more curves as lines on shared axes, with a
// legend naming each, and writes the plot to path as a PNG. It is meant
// for training curves: loss or accuracy per epoch or step, for training
// and validation data. Curves of up to 50 points also mark each point.
func SaveCurvesPNG(path, title, xLabel, yLabel string, curves ...Curve) error {
	if len(curves) == 0 {
		return errors.New("plot: SaveCurvesPNG: no curves to plot")
	}
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true

	for i, c := range curves {
		if len(c.X) != len(c.Y) {
			return fmt.Errorf("plot: SaveCurvesPNG: curve %q has %d x values but %d y values", c.Name, len(c.X), len(c.Y))
		}
		if len(c.X) == 0 {
			return fmt.Errorf("plot: SaveCurvesPNG: curve %q is empty", c.Name)
		}
		xys := make(plotter.XYs, len(c.X))
		for j := range c.X {
			xys[j] = plotter.XY{X: c.X[j], Y: c.Y[j]}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plot: SaveCurvesPNG: curve %q: %w", c.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		if len(xys) <= 50 {
			pts, err := plotter.NewScatter(xys)
			if err != nil {
				return fmt.Errorf("plot: SaveCurvesPNG: curve %q: %w", c.Name, err)
			}
			pts.Color = line.Color
			pts.Shape = draw.CircleGlyph{}
			pts.Radius = vg.Points(2)
			p.Add(pts)
			p.Legend.Add(c.Name, line, pts)
		} else {
			p.Legend.Add(c.Name, line)
		}
	}
	return savePNG(p, curvesWidth, curvesHeight, path)
}

// SaveReliabilityPNG draws a reliability diagram from bins produced by
// eval.ReliabilityBins and writes it to path as a PNG. Each non-empty bin is a
// bar spanning its confidence interval with height equal to its accuracy;
// a dot marks the bin's mean confidence. A perfectly calibrated model has
// its dots on the dashed diagonal; bars below the diagonal mean
// over-confidence. The expected calibration error is appended to title.
func SaveReliabilityPNG(bins []eval.Bin, path, title string) error {
	if len(bins) == 0 {
		return errors.New("plot: SaveReliabilityPNG: no bins to plot")
	}
	p := gplot.New()
	p.Title.Text = fmt.Sprintf("%s (ECE %.3f)", title, eval.ECE(bins))
	p.X.Label.Text = "confidence"
	p.Y.Label.Text = "accuracy"
	p.X.Min, p.X.Max = 0, 1
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true

	barColor := color.RGBA{R: 70, G: 110, B: 180, A: 255}
	var bar *plotter.Polygon
	var dots plotter.XYs
	for i, b := range bins {
		if math.IsNaN(b.Lo) || math.IsNaN(b.Hi) || math.IsNaN(b.Accuracy) || math.IsNaN(b.Confidence) {
			return fmt.Errorf("plot: SaveReliabilityPNG: bin %d has NaN fields", i)
		}
		if b.Count == 0 {
			continue
		}
		poly, err := plotter.NewPolygon(plotter.XYs{
			{X: b.Lo, Y: 0}, {X: b.Hi, Y: 0}, {X: b.Hi, Y: b.Accuracy}, {X: b.Lo, Y: b.Accuracy},
		})
		if err != nil {
			return fmt.Errorf("plot: SaveReliabilityPNG: bin %d: %w", i, err)
		}
		poly.Color = barColor
		poly.LineStyle.Color = color.White
		poly.LineStyle.Width = vg.Points(1)
		p.Add(poly)
		bar = poly
		dots = append(dots, plotter.XY{X: b.Confidence, Y: b.Accuracy})
	}

	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return fmt.Errorf("plot: SaveReliabilityPNG: %w", err)
	}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	diag.Color = color.Gray{Y: 80}
	p.Add(diag)
	p.Legend.Add("perfect calibration", diag)
	if bar != nil {
		p.Legend.Add("accuracy per bin", bar)
		pts, err := plotter.NewScatter(dots)
		if err != nil {
			return fmt.Errorf("plot: SaveReliabilityPNG: %w", err)
		}
		pts.Color = color.RGBA{R: 200, G: 60, B: 40, A: 255}
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(3)
		p.Add(pts)
		p.Legend.Add("mean confidence", pts)
	}
	return savePNG(p, reliabilitySide, reliabilitySide, path)
}

// savePNG renders p at w×h and writes it to path as a PNG, atomically
// (internal/atomicfile), creating missing parent folders.
func savePNG(p *gplot.Plot, w, h vg.Length, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI))
	p.Draw(draw.New(c))
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
