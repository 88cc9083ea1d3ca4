// Package experiments trains and evaluates a list of networks for both
// tasks on one dataset and protocol, and renders the comparison table the
// seed reproduction reported: model, task, parameters, centre-crop and
// 10-crop accuracy (1-off for age), mean ± std over folds where there are
// folds, training time and images per second.
//
// UTKFace gives one row per (net, task) on its fixed test split. Adience
// gives the paper's protocol: five runs per (net, task), test fold k and
// training on the other four, reported as mean ± std.
package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/internal/atomicfile"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/pipeline"
	"github.com/agegender/agegender/train"
	"github.com/agegender/agegender/transfer"
	"github.com/gomlx/compute"
)

// Options describe a sweep.
type Options struct {
	Nets   []string
	Tasks  []data.Task
	Source sources.Spec // Fold is ignored for Adience: all five folds run
	Input  int
	Resize int // 0: prep.ResizeFor(Input)
	Epochs int
	Batch  int
	// Limit caps each split's size (0: all), for quick sweeps.
	Limit int
	Seed  int64
	// OutDir receives one training directory per run.
	OutDir string
	// Log receives progress and each row as it is done (nil: none).
	Log io.Writer

	// Transfer lists transfer-learning rows to add (UTKFace only): a
	// backbone name (transfer.Backbones) trains the FC head on its frozen
	// features; a "+ft" suffix also fine-tunes the backbone's last block.
	// Features are cached in CacheDir; models are read from ModelsDir.
	Transfer       []string
	ModelsDir      string
	CacheDir       string
	TransferEpochs int // default 30
}

// Row is one (net, task) result, aggregated over folds.
type Row struct {
	Net, Task, Dataset  string
	Params              int64
	GFLOPs              float64
	Folds               int
	N                   int // test images (summed over folds)
	Center, TenCrop     []float64
	CenterOne, TenOne   []float64 // 1-off, age only
	TrainSeconds        float64
	TrainImgPerSec      float64
	Epochs, Input, Runs int
	// Error says why a run failed (for example a diverged training); the
	// sweep goes on with the next run.
	Error string `json:",omitempty"`
}

// Run performs the sweep on backend b.
func Run(ctx context.Context, b compute.Backend, o Options) ([]Row, error) {
	folds := []int{0}
	if o.Source.Kind == "adience" {
		folds = []int{0, 1, 2, 3, 4}
	}
	var rows []Row
	for _, net := range o.Nets {
		for _, task := range o.Tasks {
			params, flops, err := model.Stats(b, model.Config{Net: net, Classes: task.Classes(), Input: o.Input, Seed: o.Seed})
			if err != nil {
				return rows, err
			}
			row := Row{Net: net, Task: task.String(), Dataset: o.Source.Kind, Params: params, GFLOPs: float64(flops) / 1e9,
				Epochs: o.Epochs, Input: o.Input}
			for _, k := range folds {
				spec := o.Source
				spec.Fold = k
				r, err := runOne(ctx, b, o, net, task, spec)
				if err != nil {
					if ctx.Err() != nil {
						return rows, err
					}
					row.Error = fmt.Sprintf("fold %d: %v", k, err)
					break
				}
				row.Folds++
				row.N += r.n
				row.Center = append(row.Center, r.center.Accuracy)
				row.TenCrop = append(row.TenCrop, r.ten.Accuracy)
				row.CenterOne = append(row.CenterOne, r.center.OneOff)
				row.TenOne = append(row.TenOne, r.ten.OneOff)
				row.TrainSeconds += r.seconds
				row.TrainImgPerSec += r.imgPerSec / float64(len(folds))
			}
			rows = append(rows, row)
			if o.Log != nil {
				fmt.Fprintln(o.Log, Table([]Row{row}))
			}
		}
	}
	for _, name := range o.Transfer {
		for _, task := range o.Tasks {
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			row := runTransfer(b, o, name, task)
			rows = append(rows, row)
			if o.Log != nil {
				fmt.Fprintln(o.Log, Table([]Row{row}))
			}
		}
	}
	return rows, nil
}

// runTransfer trains and evaluates one transfer-learning row.
func runTransfer(b compute.Backend, o Options, name string, task data.Task) Row {
	bbName, ft := strings.CutSuffix(name, "+ft")
	epochs := o.TransferEpochs
	if epochs <= 0 {
		epochs = 30
	}
	row := Row{Net: "transfer:" + name, Task: task.String(), Dataset: o.Source.Kind, Epochs: epochs}
	bb, ok := transfer.Backbones[bbName]
	if !ok {
		row.Error = fmt.Sprintf("unknown backbone %q", bbName)
		return row
	}
	row.Input = bb.Size
	const hidden = 512
	row.Params = int64(bb.Dim*hidden + hidden + hidden*hidden + hidden + hidden*task.Classes() + task.Classes())
	if o.Source.Kind != "utkface" {
		row.Error = "transfer rows run on UTKFace only"
		return row
	}
	res, err := transfer.Run(transfer.Options{Backend: b, ModelsDir: o.ModelsDir, ImagesDir: o.Source.Dir, CacheDir: o.CacheDir,
		Backbone: bb, Task: task, MaxTrain: o.Limit, MaxTest: o.Limit, Epochs: epochs, Hidden: hidden, Seed: o.Seed,
		FineTune: ft, Log: o.Log})
	if err != nil {
		row.Error = err.Error()
		return row
	}
	row.Folds, row.N = 1, res.Test
	row.Center = []float64{res.TestAccuracy}
	if task == data.TaskAge {
		row.CenterOne = []float64{res.TestOneOff}
	}
	row.TrainSeconds = res.TrainingDuration.Seconds()
	if row.TrainSeconds > 0 {
		row.TrainImgPerSec = float64(res.Train*epochs) / row.TrainSeconds
	}
	return row
}

type oneResult struct {
	n                  int
	center, ten        eval.Report
	seconds, imgPerSec float64
}

// runOne trains net for task on one fold with the pipeline of `agegender
// train` and evaluates the best model on the test split like `agegender
// eval`.
func runOne(ctx context.Context, b compute.Backend, o Options, net string, task data.Task, spec sources.Spec) (*oneResult, error) {
	d := pipeline.Data{Source: spec, Task: task, Limit: o.Limit}
	dir := filepath.Join(o.OutDir, fmt.Sprintf("%s_%s_%s_fold%d", net, task, spec.Kind, spec.Fold))
	start := time.Now()
	res, err := pipeline.Train(ctx, b, pipeline.TrainOptions{Data: d, Resize: o.Resize, Augment: prep.DefaultAugment(), Log: o.Log,
		Run: train.Options{Model: model.Config{Net: net, Input: o.Input, Seed: o.Seed}, Optimizer: train.Adam, Batch: o.Batch, Epochs: o.Epochs, OutDir: dir}})
	if err != nil {
		return nil, err
	}
	if res.ModelPath == "" {
		return nil, fmt.Errorf("training stopped early; rerun to resume")
	}
	var secs, ips float64
	for _, e := range res.History {
		secs += e.Seconds
		ips += e.ImgPerSec / float64(len(res.History))
	}
	if secs == 0 {
		secs = time.Since(start).Seconds()
	}
	r, err := pipeline.Eval(ctx, b, pipeline.EvalOptions{Data: d, Model: res.ModelPath, Split: "test", Log: o.Log})
	if err != nil {
		return nil, err
	}
	return &oneResult{n: r.Center.N, center: r.Center, ten: r.TenCrop, seconds: secs, imgPerSec: ips}, nil
}

func pct(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	m, s := eval.MeanStd(xs)
	if len(xs) == 1 {
		return fmt.Sprintf("%.2f", 100*m)
	}
	return eval.FormatMeanStd(m, s)
}

// Save writes rows to dir as table.md (Table) and results.json.
func Save(dir string, rows []Row) error {
	j, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "table.md"), []byte(Table(rows)), 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "results.json"), j, 0o644)
}

// Table renders rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| model | task | data | params | GFLOP/img | input | epochs | folds | test n | centre acc % | 10-crop acc % | centre 1-off % | 10-crop 1-off % | train time | train img/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2fM | %.3f | %d | %d | – | – | failed: %s | | | | | |\n",
				r.Net, r.Task, r.Dataset, float64(r.Params)/1e6, r.GFLOPs, r.Input, r.Epochs, strings.ReplaceAll(r.Error, "|", "/"))
			continue
		}
		one, ten1 := "–", "–"
		if r.Task == "age" {
			one, ten1 = pct(r.CenterOne), pct(r.TenOne)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fM | %.3f | %d | %d | %d | %d | %s | %s | %s | %s | %s | %.0f |\n",
			r.Net, r.Task, r.Dataset, float64(r.Params)/1e6, r.GFLOPs, r.Input, r.Epochs, r.Folds, r.N,
			pct(r.Center), pct(r.TenCrop), one, ten1, (time.Duration(r.TrainSeconds) * time.Second).String(), r.TrainImgPerSec)
	}
	return b.String()
}
