package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/eval"
	"github.com/agegender/agegender/eval/plot"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/predict"
	"github.com/gomlx/compute"
)

// loadPredictor opens a model file, or the built-in model for task.
func loadPredictor(b compute.Backend, path, task string) (*model.Predictor, error) {
	m, err := models.Load(path, task)
	if err != nil {
		return nil, err
	}
	return model.NewPredictor(b, m, backend.InferenceImpl(b))
}

func cmdEval(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	var d dataFlags
	d.register(fs)
	modelPath := fs.String("model", "", "model file (default: the built-in model for --task)")
	split := fs.String("split", "test", "split to evaluate: test or val")
	asJSON := fs.Bool("json", false, "print one JSON object")
	confusion := fs.String("confusion", "", "save the confusion matrix PNG here (default: <task>_confusion.png next to the model, or in the current directory)")
	be := fs.String("backend", "", "compute backend: go, onnx or xla")
	calibrate := fs.String("calibrate", "", "fit a softmax temperature on the validation split, report the test ECE before/after, and save the calibrated model here")
	fs.Parse(args)
	if *split != "test" && *split != "val" {
		return fmt.Errorf("eval: --split %q: use test or val", *split)
	}
	joint := d.task == "both"
	if joint {
		d.task = "gender"
	}
	task, splits, err := d.load()
	if err != nil {
		return err
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, backend.Describe(b))
	if joint {
		p, err := loadPredictor(b, *modelPath, model.HeadsGenderAge)
		if err != nil {
			return err
		}
		defer p.Close()
		samples := splits.Test
		if *split == "val" {
			samples = splits.Val
		}
		return evalJoint(p, *modelPath, splits.Name, *split, d.dir, samples, splits.Val, *calibrate, *asJSON)
	}
	p, err := loadPredictor(b, *modelPath, task.String())
	if err != nil {
		return err
	}
	samples := splits.Test
	if *split == "val" {
		samples = splits.Val
	}
	if len(samples) == 0 {
		return fmt.Errorf("eval: the %s split is empty", *split)
	}
	c, labels, err := cache(*split, d.dir, samples, task, predict.PrepConfig(p.Info))
	if err != nil {
		return err
	}
	ordered := task == data.TaskAge
	type result struct {
		Model   string       `json:"model"`
		Split   string       `json:"split"`
		Dataset string       `json:"dataset"`
		Center  eval.Report  `json:"center"`
		TenCrop eval.Report  `json:"ten_crop"`
		Groups  []eval.Group `json:"groups,omitempty"`
		// Calibration (with --calibrate): temperature fitted on the
		// validation split and the test ECE before and after.
		Temperature float64 `json:"temperature,omitempty"`
		ECEBefore   float64 `json:"ece_before,omitempty"`
		ECEAfter    float64 `json:"ece_after,omitempty"`
	}
	res := result{Model: *modelPath, Split: *split, Dataset: splits.Name}
	if res.Model == "" {
		res.Model = "built-in " + task.String()
	}
	var keys []string
	for i := 0; i < c.Len(); i++ {
		s := samples[c.Index(i)]
		keys = append(keys, groupKey(s))
	}
	for _, mode := range []predict.Mode{predict.Center, predict.TenCrop} {
		preds, err := predict.Set(p, c, labels, mode)
		if err != nil {
			return err
		}
		rep, err := eval.Evaluate(task.String()+" ("+mode.String()+")", task.ClassNames(), ordered, preds)
		if err != nil {
			return err
		}
		if mode == predict.Center {
			res.Center = rep
			res.Groups = eval.Breakdown(preds, keys, ordered)
			if *calibrate != "" {
				if err := calibrateModel(p, *modelPath, task, splits.Val, d.dir, preds, *calibrate, &res.Temperature, &res.ECEBefore, &res.ECEAfter); err != nil {
					return err
				}
			}
		} else {
			res.TenCrop = rep
		}
	}
	png := *confusion
	if png == "" {
		dir := "."
		if *modelPath != "" {
			dir = filepath.Dir(*modelPath)
		}
		png = filepath.Join(dir, task.String()+"_confusion.png")
	}
	if err := plot.SaveConfusionPNG(res.TenCrop, png); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("model %s on %s, %s split\n\n", res.Model, splits.Name, *split)
	for _, r := range []eval.Report{res.Center, res.TenCrop} {
		if ordered {
			fmt.Printf("%-14s n=%d  exact %.2f%%  1-off %.2f%%\n", r.Task, r.N, 100*r.Accuracy, 100*r.OneOff)
		} else {
			fmt.Printf("%-14s n=%d  accuracy %.2f%%\n", r.Task, r.N, 100*r.Accuracy)
		}
	}
	if res.Temperature > 0 {
		fmt.Printf("\ncalibration: temperature %.3f (fitted on validation); test ECE %.4f → %.4f; calibrated model saved to %s\n",
			res.Temperature, res.ECEBefore, res.ECEAfter, *calibrate)
	}
	fmt.Printf("\n%s\nconfusion matrix saved to %s\n", res.TenCrop, png)
	printGroups(res.Groups, ordered)
	return nil
}

// printGroups prints the per-group (gender/race/age group) accuracy of the
// centre crop, largest gaps first being easy to spot in a sorted list.
func printGroups(groups []eval.Group, ordered bool) {
	if len(groups) == 0 {
		return
	}
	fmt.Printf("\naccuracy by group (centre crop; groups of 20+ faces)\n%-28s %6s %9s", "group", "n", "accuracy")
	if ordered {
		fmt.Printf(" %8s", "1-off")
	}
	fmt.Println()
	for _, g := range groups {
		if g.N < 20 {
			continue
		}
		fmt.Printf("%-28s %6d %8.1f%%", g.Key, g.N, 100*g.Accuracy)
		if ordered {
			fmt.Printf(" %7.1f%%", 100*g.OneOff)
		}
		fmt.Println()
	}
}

// calibrateModel fits a softmax temperature on the validation split
// (centre crop), reports the test ECE before and after it, saves a
// reliability diagram next to out, and writes the model with the
// temperature to out.
func calibrateModel(p *model.Predictor, modelPath string, task data.Task, val []data.Sample, dir string,
	test []eval.Prediction, out string, temp, before, after *float64) error {
	if len(val) == 0 {
		return fmt.Errorf("eval: --calibrate needs a validation split")
	}
	vc, vl, err := cache("validation", dir, val, task, predict.PrepConfig(p.Info))
	if err != nil {
		return err
	}
	vp, err := predict.Set(p, vc, vl, predict.Center)
	if err != nil {
		return err
	}
	// log-probabilities are logits up to a per-row constant, which softmax ignores.
	logits := func(ps []eval.Prediction) ([][]float32, []int) {
		var l [][]float32
		var y []int
		for _, x := range ps {
			row := make([]float32, len(x.Probs))
			for i, v := range x.Probs {
				row[i] = float32(math.Log(math.Max(float64(v), 1e-12)))
			}
			l, y = append(l, row), append(y, x.Label)
		}
		return l, y
	}
	vl2, vy := logits(vp)
	t, err := eval.FitTemperature(vl2, vy)
	if err != nil {
		return err
	}
	tl, _ := logits(test)
	scaled := make([]eval.Prediction, len(test))
	for i, x := range test {
		scaled[i] = eval.Prediction{Label: x.Label, Probs: eval.ApplyTemperature(tl[i], t)}
	}
	*temp = t
	*before = eval.ECE(eval.ReliabilityBins(test, eval.ECEBins))
	binsAfter := eval.ReliabilityBins(scaled, eval.ECEBins)
	*after = eval.ECE(binsAfter)
	if err := plot.SaveReliabilityPNG(eval.ReliabilityBins(test, eval.ECEBins), strings.TrimSuffix(out, filepath.Ext(out))+"_reliability_before.png", task.String()+" before calibration"); err != nil {
		return err
	}
	if err := plot.SaveReliabilityPNG(binsAfter, strings.TrimSuffix(out, filepath.Ext(out))+"_reliability_after.png", task.String()+" after calibration"); err != nil {
		return err
	}
	m, err := models.Load(modelPath, task.String())
	if err != nil {
		return err
	}
	prev := m.Info.Temperature
	if prev <= 0 {
		prev = 1
	}
	m.Info.Temperature = prev * t
	return m.Save(out, true)
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

// jointReport is eval's result for a model.HeadsGenderAge net, for one
// crop mode.
type jointReport struct {
	Gender    eval.Report    `json:"gender"`
	Age       eval.Report    `json:"age"`
	Years     eval.AgeErrors `json:"years"`
	GenderECE float64        `json:"gender_ece"`
	AgeECE    float64        `json:"age_ece"`
	// With --calibrate (centre crop): each head's ECE after temperature
	// scaling fitted on the validation split.
	GenderECECalibrated float64 `json:"gender_ece_calibrated,omitempty"`
	AgeECECalibrated    float64 `json:"age_ece_calibrated,omitempty"`
}

// jointSplit runs p on a cached split (centre crop or 10-crop) and splits
// each answer into gender and age-group predictions, the age estimates in
// years, and each head's log-probabilities (logits up to a constant).
type jointSplit struct {
	gender, age      []eval.Prediction
	est              []float64
	ages             []int
	gLogits, yLogits [][]float32
}

func runJoint(p *model.Predictor, c *prep.Cache, samples []data.Sample, genders []int, mode predict.Mode) (jointSplit, error) {
	var js jointSplit
	preds, err := predict.Set(p, c, genders, mode)
	if err != nil {
		return js, err
	}
	logs := func(x []float32) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32(math.Log(math.Max(float64(v), 1e-12)))
		}
		return out
	}
	for i, pr := range preds {
		s := samples[c.Index(i)]
		g, years := model.SplitJoint(pr.Probs)
		mean, _, groups := model.AgeEstimate(years)
		js.gender = append(js.gender, eval.Prediction{Label: genders[i], Probs: g})
		js.age = append(js.age, eval.Prediction{Label: int(s.AgeGroup), Probs: groups[:]})
		js.est, js.ages = append(js.est, mean), append(js.ages, s.Age)
		js.gLogits, js.yLogits = append(js.gLogits, logs(g)), append(js.yLogits, logs(years))
	}
	return js, nil
}

// calibrateJoint fits one temperature per head on the validation split,
// returns the test ECE of each head after it, and writes the model with
// the temperatures to out.
func calibrateJoint(p *model.Predictor, modelPath string, val []data.Sample, dir string, test jointSplit, out string) (gECE, aECE float64, err error) {
	vc, vg, err := cache("validation", dir, val, data.TaskGender, predict.PrepConfig(p.Info))
	if err != nil {
		return 0, 0, err
	}
	v, err := runJoint(p, vc, val, vg, predict.Center)
	if err != nil {
		return 0, 0, err
	}
	tg, err := eval.FitTemperature(v.gLogits, vg)
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
	m, err := models.Load(modelPath, model.HeadsGenderAge)
	if err != nil {
		return 0, 0, err
	}
	prevG, prevA := m.Info.Temperature, m.Info.AgeTemperature
	if prevG <= 0 {
		prevG = 1
	}
	if prevA <= 0 {
		prevA = prevG
	}
	m.Info.Temperature, m.Info.AgeTemperature = prevG*tg, prevA*ta
	fmt.Fprintf(os.Stderr, "calibration: gender temperature %.3f, age temperature %.3f (fitted on %d validation faces); model saved to %s\n", tg, ta, len(v.ages), out)
	return eval.ECE(eval.ReliabilityBins(gs, eval.ECEBins)), eval.ECE(eval.ReliabilityBins(as, eval.ECEBins)), m.Save(out, true)
}

// evalJoint evaluates a joint gender + age-in-years net on samples: gender
// accuracy, age-group exact and 1-off accuracy (groups summed from the
// years distribution), MAE and CS@5 of the expected age, and each head's
// ECE, for the centre crop and 10-crop.
func evalJoint(p *model.Predictor, modelPath, dataset, split, dir string, samples, val []data.Sample, calibrate string, asJSON bool) error {
	if len(samples) == 0 {
		return fmt.Errorf("eval: the %s split is empty", split)
	}
	c, genders, err := cache(split, dir, samples, data.TaskGender, predict.PrepConfig(p.Info))
	if err != nil {
		return err
	}
	res := struct {
		Model   string      `json:"model"`
		Split   string      `json:"split"`
		Dataset string      `json:"dataset"`
		Center  jointReport `json:"center"`
		TenCrop jointReport `json:"ten_crop"`
	}{Model: modelPath, Split: split, Dataset: dataset}
	if res.Model == "" {
		res.Model = "built-in " + model.HeadsGenderAge
	}
	for _, mode := range []predict.Mode{predict.Center, predict.TenCrop} {
		js, err := runJoint(p, c, samples, genders, mode)
		if err != nil {
			return err
		}
		gp, ap, est, ages := js.gender, js.age, js.est, js.ages
		var r jointReport
		if r.Gender, err = eval.Evaluate("gender ("+mode.String()+")", data.TaskGender.ClassNames(), false, gp); err != nil {
			return err
		}
		if r.Age, err = eval.Evaluate("age ("+mode.String()+")", data.TaskAge.ClassNames(), true, ap); err != nil {
			return err
		}
		r.Years = eval.AgeError(est, ages)
		r.GenderECE = eval.ECE(eval.ReliabilityBins(gp, eval.ECEBins))
		r.AgeECE = eval.ECE(eval.ReliabilityBins(ap, eval.ECEBins))
		if mode == predict.Center && calibrate != "" {
			if r.GenderECECalibrated, r.AgeECECalibrated, err = calibrateJoint(p, modelPath, val, dir, js, calibrate); err != nil {
				return err
			}
		}
		if mode == predict.Center {
			res.Center = r
		} else {
			res.TenCrop = r
		}
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("model %s on %s, %s split\n\n", res.Model, dataset, split)
	for _, r := range []jointReport{res.Center, res.TenCrop} {
		fmt.Printf("%-18s n=%d  gender %.2f%%  age exact %.2f%%  1-off %.2f%%  MAE %.2f years  CS@5 %.2f%%  ECE gender %.3f, age %.3f\n",
			strings.TrimPrefix(r.Gender.Task, "gender "), r.Gender.N, 100*r.Gender.Accuracy, 100*r.Age.Accuracy, 100*r.Age.OneOff,
			r.Years.MAE, 100*r.Years.CS5, r.GenderECE, r.AgeECE)
		if r.GenderECECalibrated > 0 {
			fmt.Printf("%18s after temperature scaling: ECE gender %.3f, age %.3f\n", "", r.GenderECECalibrated, r.AgeECECalibrated)
		}
	}
	return nil
}
