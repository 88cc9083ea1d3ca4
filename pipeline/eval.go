package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/eval/plot"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
	"github.com/gomlx/compute"
)

// EvalOptions describe an evaluation by [Eval] or [EvalJoint].
type EvalOptions struct {
	Data Data
	// Model is the model file; "" means the built-in model for the task.
	Model string
	// Split is "test" or "val".
	Split string
	// Confusion, for Eval, is where the 10-crop confusion matrix PNG is
	// saved ("" saves none).
	Confusion string
	// Calibrate, when set, fits a softmax temperature (one per head for a
	// joint net) on the validation split and saves the calibrated model
	// there.
	Calibrate string
	// Log receives skipped files and decoding progress (nil: none).
	Log io.Writer
}

// Report is Eval's result. Its JSON form is `agegender eval --json`'s.
type Report struct {
	Model   string       `json:"model"`
	Split   string       `json:"split"`
	Dataset string       `json:"dataset"`
	Center  eval.Report  `json:"center"`
	TenCrop eval.Report  `json:"ten_crop"`
	Groups  []eval.Group `json:"groups,omitempty"`
	// Calibration (with EvalOptions.Calibrate): the temperature fitted on
	// the validation split and the evaluated split's ECE before and after.
	Temperature float64 `json:"temperature,omitempty"`
	ECEBefore   float64 `json:"ece_before,omitempty"`
	ECEAfter    float64 `json:"ece_after,omitempty"`

	confusion, calibrated string
}

// evaluation is what an evaluation works on: the loaded splits, the
// model and its predictor, and the decoded split to evaluate.
type evaluation struct {
	splits *Splits
	model  *model.Model
	pred   *model.Predictor
	test   *Decoded
}

// open loads the data and the model of o and decodes the split to
// evaluate; the caller closes the evaluation.
func open(ctx context.Context, b compute.Backend, o EvalOptions) (*evaluation, error) {
	if o.Split != "test" && o.Split != "val" {
		return nil, fmt.Errorf("pipeline: split %q: use test or val", o.Split)
	}
	s, err := Load(o.Data, o.Log)
	if err != nil {
		return nil, err
	}
	samples, _ := s.Split(o.Split)
	if len(samples) == 0 {
		return nil, fmt.Errorf("pipeline: the %s split is empty", o.Split)
	}
	m, err := models.Load(o.Model, o.Data.Task.String())
	if err != nil {
		return nil, err
	}
	p, err := model.NewPredictor(b, m, backend.InferenceImpl(b))
	if err != nil {
		return nil, err
	}
	d, err := s.Decode(ctx, o.Split, samples, predict.PrepConfig(p.Info), o.Log)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &evaluation{splits: s, model: m, pred: p, test: d}, nil
}

func (e *evaluation) close() { e.pred.Close() }

// Eval evaluates a one-task model (o.Data.Task) on a split: centre-crop
// and 10-crop reports, the centre crop's accuracy by group (gender, race,
// age group), and with o.Calibrate a temperature fitted on the validation
// split.
func Eval(ctx context.Context, b compute.Backend, o EvalOptions) (*Report, error) {
	if o.Data.Task == data.TaskGenderAge {
		return nil, fmt.Errorf("pipeline: Eval takes a one-task model; use EvalJoint for task %s", o.Data.Task)
	}
	task := o.Data.Task
	e, err := open(ctx, b, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	d := e.test
	res := &Report{Model: o.Model, Split: o.Split, Dataset: e.splits.Name, confusion: o.Confusion, calibrated: o.Calibrate}
	if res.Model == "" {
		res.Model = "built-in " + task.String()
	}
	ordered := task == data.TaskAge
	keys := make([]string, len(d.Samples))
	for i, x := range d.Samples {
		keys[i] = groupKey(x)
	}
	for _, mode := range []predict.Mode{predict.Center, predict.TenCrop} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		preds, err := predict.Set(e.pred, d.Cache, d.Labels, mode)
		if err != nil {
			return nil, err
		}
		rep, err := eval.Evaluate(task.String()+" ("+mode.String()+")", task.ClassNames(), ordered, preds)
		if err != nil {
			return nil, err
		}
		if mode == predict.TenCrop {
			res.TenCrop = rep
			continue
		}
		res.Center = rep
		res.Groups = eval.Breakdown(preds, keys, ordered)
		if o.Calibrate != "" {
			if err := e.calibrate(ctx, preds, o, res); err != nil {
				return nil, err
			}
		}
	}
	if o.Confusion != "" {
		if err := plot.SaveConfusionPNG(res.TenCrop, o.Confusion); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// WriteText writes r for people: both crop modes, the calibration, the
// 10-crop report with its confusion matrix, and the accuracy by group.
func (r *Report) WriteText(w io.Writer) {
	ordered := r.Center.Ordered
	fmt.Fprintf(w, "model %s on %s, %s split\n\n", r.Model, r.Dataset, r.Split)
	for _, x := range []eval.Report{r.Center, r.TenCrop} {
		if ordered {
			fmt.Fprintf(w, "%-14s n=%d  exact %.2f%%  1-off %.2f%%\n", x.Task, x.N, 100*x.Accuracy, 100*x.OneOff)
		} else {
			fmt.Fprintf(w, "%-14s n=%d  accuracy %.2f%%\n", x.Task, x.N, 100*x.Accuracy)
		}
	}
	if r.Temperature > 0 {
		fmt.Fprintf(w, "\ncalibration: temperature %.3f (fitted on validation); test ECE %.4f → %.4f; calibrated model saved to %s\n",
			r.Temperature, r.ECEBefore, r.ECEAfter, r.calibrated)
	}
	fmt.Fprintf(w, "\n%s\n", r.TenCrop)
	if r.confusion != "" {
		fmt.Fprintf(w, "confusion matrix saved to %s\n", r.confusion)
	}
	if len(r.Groups) == 0 {
		return
	}
	// Per-group accuracy of the centre crop (groups of 20+ faces).
	fmt.Fprintf(w, "\naccuracy by group (centre crop; groups of 20+ faces)\n%-28s %6s %9s", "group", "n", "accuracy")
	if ordered {
		fmt.Fprintf(w, " %8s", "1-off")
	}
	fmt.Fprintln(w)
	small := 0
	for _, g := range r.Groups {
		if g.N < 20 {
			small++
			continue
		}
		fmt.Fprintf(w, "%-28s %6d %8.1f%%", g.Key, g.N, 100*g.Accuracy)
		if ordered {
			fmt.Fprintf(w, " %7.1f%%", 100*g.OneOff)
		}
		fmt.Fprintln(w)
	}
	if small == len(r.Groups) {
		fmt.Fprintf(w, "(none: all %d groups have fewer than 20 faces; evaluate more faces, e.g. without --limit)\n", small)
	} else if small > 0 {
		fmt.Fprintf(w, "(%d smaller groups not shown; all are in --json)\n", small)
	}
}

// calibrate fits a softmax temperature on the validation split (centre
// crop), records the ECE of test (the evaluated split's centre-crop
// predictions) before and after it in res, saves reliability diagrams
// next to o.Calibrate, and writes m with the temperature to o.Calibrate.
func (e *evaluation) calibrate(ctx context.Context, test []eval.Prediction, o EvalOptions, res *Report) error {
	v, err := e.validation(ctx, o)
	if err != nil {
		return err
	}
	vp, err := predict.Set(e.pred, v.Cache, v.Labels, predict.Center)
	if err != nil {
		return err
	}
	logits := func(ps []eval.Prediction) ([][]float32, []int) {
		var l [][]float32
		var y []int
		for _, x := range ps {
			l, y = append(l, logProbs(x.Probs)), append(y, x.Label)
		}
		return l, y
	}
	vl, vy := logits(vp)
	t, err := eval.FitTemperature(vl, vy)
	if err != nil {
		return err
	}
	tl, _ := logits(test)
	scaled := make([]eval.Prediction, len(test))
	for i, x := range test {
		scaled[i] = eval.Prediction{Label: x.Label, Probs: eval.ApplyTemperature(tl[i], t)}
	}
	before, after := eval.ReliabilityBins(test, eval.ECEBins), eval.ReliabilityBins(scaled, eval.ECEBins)
	res.Temperature, res.ECEBefore, res.ECEAfter = t, eval.ECE(before), eval.ECE(after)
	stem, task := strings.TrimSuffix(o.Calibrate, filepath.Ext(o.Calibrate)), o.Data.Task.String()
	if err := plot.SaveReliabilityPNG(before, stem+"_reliability_before.png", task+" before calibration"); err != nil {
		return err
	}
	if err := plot.SaveReliabilityPNG(after, stem+"_reliability_after.png", task+" after calibration"); err != nil {
		return err
	}
	out := *e.model
	out.Info.Temperature = orOne(out.Info.Temperature) * t
	return out.Save(o.Calibrate, true)
}

// validation decodes the validation split, on which calibration fits.
func (e *evaluation) validation(ctx context.Context, o EvalOptions) (*Decoded, error) {
	if len(e.splits.Val) == 0 {
		return nil, fmt.Errorf("pipeline: calibration needs a validation split")
	}
	return e.splits.Decode(ctx, "validation", e.splits.Val, predict.PrepConfig(e.pred.Info), o.Log)
}

// logProbs returns the log of probabilities: logits up to a per-row
// constant, which softmax ignores.
func logProbs(p []float32) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(math.Log(math.Max(float64(v), 1e-12)))
	}
	return out
}

// orOne is t, or 1 when t is not set (a model's temperature).
func orOne(t float64) float64 {
	if t <= 0 {
		return 1
	}
	return t
}

// groupKey is the fairness-report key of a sample: gender/race/age group,
// with the parts the dataset lacks left out.
func groupKey(s data.Sample) string {
	races := []string{"white", "black", "asian", "indian", "other"}
	k := s.Gender.String()
	if s.Race >= 0 && s.Race < len(races) {
		k += "/" + races[s.Race]
	}
	return k + "/" + s.AgeGroup.String()
}
