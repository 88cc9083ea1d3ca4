package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
	"github.com/gomlx/compute"
)

// JointReport is EvalJoint's result. Its JSON form is `agegender eval
// --task both --json`'s.
type JointReport struct {
	Model   string    `json:"model"`
	Split   string    `json:"split"`
	Dataset string    `json:"dataset"`
	Center  JointMode `json:"center"`
	TenCrop JointMode `json:"ten_crop"`
}

// JointMode is a joint net's evaluation for one crop mode.
type JointMode struct {
	Gender    eval.Report    `json:"gender"`
	Age       eval.Report    `json:"age"`
	Years     eval.AgeErrors `json:"years"`
	GenderECE float64        `json:"gender_ece"`
	AgeECE    float64        `json:"age_ece"`
	// With calibration (centre crop): each head's ECE after temperature
	// scaling fitted on the validation split.
	GenderECECalibrated float64 `json:"gender_ece_calibrated,omitempty"`
	AgeECECalibrated    float64 `json:"age_ece_calibrated,omitempty"`
}

// jointPreds are a joint net's answers on a decoded split, split into
// gender and age-group predictions, the age estimates in years, and each
// head's log-probabilities (logits up to a constant).
type jointPreds struct {
	gender, age      []eval.Prediction
	est              []float64
	ages             []int
	gLogits, yLogits [][]float32
}

func runJoint(p *model.Predictor, d *Decoded, mode predict.Mode) (jointPreds, error) {
	var js jointPreds
	preds, err := predict.Set(p, d.Cache, d.Labels, mode)
	if err != nil {
		return js, err
	}
	for i, pr := range preds {
		s := d.Samples[i]
		g, years := model.SplitJoint(pr.Probs)
		mean, _, groups := model.AgeEstimate(years)
		js.gender = append(js.gender, eval.Prediction{Label: d.Labels[i], Probs: g})
		js.age = append(js.age, eval.Prediction{Label: int(s.AgeGroup), Probs: groups[:]})
		js.est, js.ages = append(js.est, mean), append(js.ages, s.Age)
		js.gLogits, js.yLogits = append(js.gLogits, logProbs(g)), append(js.yLogits, logProbs(years))
	}
	return js, nil
}

// EvalJoint evaluates a joint gender + age-in-years net on a split: gender
// accuracy, age-group exact and 1-off accuracy (groups summed from the
// years distribution), MAE and CS@5 of the expected age, and each head's
// ECE, for the centre crop and 10-crop.
func EvalJoint(ctx context.Context, b compute.Backend, o EvalOptions) (*JointReport, error) {
	o.Data.Task = data.TaskGenderAge
	e, err := open(ctx, b, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	res := &JointReport{Model: o.Model, Split: o.Split, Dataset: e.splits.Name}
	if res.Model == "" {
		res.Model = "built-in " + models.Joint
	}
	for _, mode := range []predict.Mode{predict.Center, predict.TenCrop} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		js, err := runJoint(e.pred, e.test, mode)
		if err != nil {
			return nil, err
		}
		var r JointMode
		if r.Gender, err = eval.Evaluate("gender ("+mode.String()+")", data.TaskGender.ClassNames(), false, js.gender); err != nil {
			return nil, err
		}
		if r.Age, err = eval.Evaluate("age ("+mode.String()+")", data.TaskAge.ClassNames(), true, js.age); err != nil {
			return nil, err
		}
		r.Years = eval.AgeError(js.est, js.ages)
		r.GenderECE = eval.ECE(eval.ReliabilityBins(js.gender, eval.ECEBins))
		r.AgeECE = eval.ECE(eval.ReliabilityBins(js.age, eval.ECEBins))
		if mode == predict.TenCrop {
			res.TenCrop = r
			continue
		}
		if o.Calibrate != "" {
			if r.GenderECECalibrated, r.AgeECECalibrated, err = e.calibrateJoint(ctx, js, o); err != nil {
				return nil, err
			}
		}
		res.Center = r
	}
	return res, nil
}

// WriteText writes r for people, one line per crop mode.
func (r *JointReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "model %s on %s, %s split\n\n", r.Model, r.Dataset, r.Split)
	for _, x := range []JointMode{r.Center, r.TenCrop} {
		fmt.Fprintf(w, "%-18s n=%d  gender %.2f%%  age exact %.2f%%  1-off %.2f%%  MAE %.2f years  CS@5 %.2f%%  ECE gender %.3f, age %.3f\n",
			strings.TrimPrefix(x.Gender.Task, "gender "), x.Gender.N, 100*x.Gender.Accuracy, 100*x.Age.Accuracy, 100*x.Age.OneOff,
			x.Years.MAE, 100*x.Years.CS5, x.GenderECE, x.AgeECE)
		if x.GenderECECalibrated > 0 {
			fmt.Fprintf(w, "%18s after temperature scaling: ECE gender %.3f, age %.3f\n", "", x.GenderECECalibrated, x.AgeECECalibrated)
		}
	}
}

// calibrateJoint fits one temperature per head on the validation split,
// returns the ECE of each head on test after it, and writes m with the
// temperatures to o.Calibrate.
func (e *evaluation) calibrateJoint(ctx context.Context, test jointPreds, o EvalOptions) (gECE, aECE float64, err error) {
	vd, err := e.validation(ctx, o)
	if err != nil {
		return 0, 0, err
	}
	v, err := runJoint(e.pred, vd, predict.Center)
	if err != nil {
		return 0, 0, err
	}
	tg, err := eval.FitTemperature(v.gLogits, vd.Labels)
	if err != nil {
		return 0, 0, err
	}
	years := make([]int, len(v.ages))
	for i, a := range v.ages {
		years[i] = min(max(a, 0), model.AgeBins-1)
	}
	ta, err := eval.FitTemperature(v.yLogits, years)
	if err != nil {
		return 0, 0, err
	}
	var gs, as []eval.Prediction
	for i := range test.gender {
		gs = append(gs, eval.Prediction{Label: test.gender[i].Label, Probs: eval.ApplyTemperature(test.gLogits[i], tg)})
		_, _, groups := model.AgeEstimate(eval.ApplyTemperature(test.yLogits[i], ta))
		as = append(as, eval.Prediction{Label: test.age[i].Label, Probs: groups[:]})
	}
	out := *e.model
	prevG := orOne(out.Info.Temperature)
	prevA := out.Info.AgeTemperature
	if prevA <= 0 {
		prevA = prevG
	}
	out.Info.Temperature, out.Info.AgeTemperature = prevG*tg, prevA*ta
	if o.Log != nil {
		fmt.Fprintf(o.Log, "calibration: gender temperature %.3f, age temperature %.3f (fitted on %d validation faces); model saved to %s\n", tg, ta, len(v.ages), o.Calibrate)
	}
	return eval.ECE(eval.ReliabilityBins(gs, eval.ECEBins)), eval.ECE(eval.ReliabilityBins(as, eval.ECEBins)), out.Save(o.Calibrate, true)
}
