package eval

import (
	"errors"
	"fmt"
	"math"
)

// ECEBins is the number of equal-width confidence bins [Evaluate] uses for
// the expected calibration error, the value used by Guo et al. (2017).
const ECEBins = 15

// minProb is the probability floor used when computing the negative
// log-likelihood, so that a single confidently wrong prediction yields a
// large but finite loss (-ln 1e-12 ≈ 27.6) instead of +Inf.
const minProb = 1e-12

// Prediction is a classifier's output for one example.
type Prediction struct {
	// Label is the index of the true class.
	Label int
	// Probs holds the predicted probability of each class, in the same
	// order as the class names given to Evaluate. Values that do not sum
	// exactly to one (float32 rounding, averaged crops) are renormalised.
	Probs []float32
}

// Report summarises a classifier's performance on one task.
//
// All rates are fractions in [0, 1], not percentages.
type Report struct {
	// Task names what is being predicted, for example "gender" or "age".
	Task string `json:"task"`
	// ClassNames lists the classes in index order.
	ClassNames []string `json:"class_names"`
	// N is the number of evaluated predictions.
	N int `json:"n"`
	// Accuracy is the fraction of predictions whose most probable class
	// is the true class.
	Accuracy float64 `json:"accuracy"`
	// OneOff is the fraction of predictions at most one class away from
	// the true class (|pred-label| <= 1). It is only computed when
	// Ordered is true and is zero otherwise.
	OneOff float64 `json:"one_off"`
	// Ordered reports whether the classes have a natural order.
	Ordered bool `json:"ordered"`
	// Confusion[t][p] counts examples of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
	// Precision[c] is the fraction of predictions of class c that were
	// right; zero when c was never predicted.
	Precision []float64 `json:"precision"`
	// Recall[c] is the fraction of examples of class c that were found;
	// zero when c never occurs.
	Recall []float64 `json:"recall"`
	// F1[c] is the harmonic mean of Precision[c] and Recall[c]; zero when
	// both are zero.
	F1 []float64 `json:"f1"`
	// ECE is the expected calibration error over ECEBins equal-width bins
	// of the maximum probability: the count-weighted mean of
	// |accuracy - confidence| per bin. Zero means perfectly calibrated.
	ECE float64 `json:"ece"`
	// NLL is the mean negative natural log of the probability assigned to
	// the true class (the cross-entropy loss), with probabilities floored
	// at 1e-12.
	NLL float64 `json:"nll"`
}

// Evaluate computes a Report for one task from a set of predictions.
//
// classNames fixes the number of classes K; every prediction must have a
// label in [0, K) and exactly K probabilities that are finite and
// non-negative with a positive sum. ordered says whether the classes form
// a scale (age groups), which enables the 1-off accuracy.
//
// The predicted class is the arg-max of Probs; ties go to the lowest index.
func Evaluate(task string, classNames []string, ordered bool, preds []Prediction) (Report, error) {
	k := len(classNames)
	if k < 2 {
		return Report{}, fmt.Errorf("eval: task %q: need at least 2 classes, got %d", task, k)
	}
	if len(preds) == 0 {
		return Report{}, fmt.Errorf("eval: task %q: no predictions to evaluate", task)
	}
	for i, p := range preds {
		if err := checkPrediction(p, k); err != nil {
			return Report{}, fmt.Errorf("eval: task %q: prediction %d: %w", task, i, err)
		}
	}

	r := Report{
		Task:       task,
		ClassNames: append([]string(nil), classNames...),
		N:          len(preds),
		Ordered:    ordered,
		Confusion:  make([][]int, k),
		Precision:  make([]float64, k),
		Recall:     make([]float64, k),
		F1:         make([]float64, k),
	}
	for t := range r.Confusion {
		r.Confusion[t] = make([]int, k)
	}

	var correct, oneOff int
	var nll float64
	for _, p := range preds {
		pred, _ := confidence(p.Probs)
		r.Confusion[p.Label][pred]++
		if pred == p.Label {
			correct++
		}
		if d := pred - p.Label; d >= -1 && d <= 1 {
			oneOff++
		}
		nll -= math.Log(math.Max(normalisedProb(p.Probs, p.Label), minProb))
	}
	n := float64(len(preds))
	r.Accuracy = float64(correct) / n
	if ordered {
		r.OneOff = float64(oneOff) / n
	}
	r.NLL = nll / n

	for c := range k {
		var predicted, actual int
		for t := range k {
			predicted += r.Confusion[t][c]
			actual += r.Confusion[c][t]
		}
		tp := float64(r.Confusion[c][c])
		if predicted > 0 {
			r.Precision[c] = tp / float64(predicted)
		}
		if actual > 0 {
			r.Recall[c] = tp / float64(actual)
		}
		if s := r.Precision[c] + r.Recall[c]; s > 0 {
			r.F1[c] = 2 * r.Precision[c] * r.Recall[c] / s
		}
	}

	r.ECE = ECE(ReliabilityBins(preds, ECEBins))
	return r, nil
}

// checkPrediction validates one prediction against a K-class task.
func checkPrediction(p Prediction, k int) error {
	if p.Label < 0 || p.Label >= k {
		return fmt.Errorf("label %d out of range [0, %d)", p.Label, k)
	}
	if len(p.Probs) != k {
		return fmt.Errorf("got %d probabilities, want %d (one per class)", len(p.Probs), k)
	}
	var sum float64
	for c, v := range p.Probs {
		f := float64(v)
		switch {
		case math.IsNaN(f):
			return fmt.Errorf("probability of class %d is NaN", c)
		case math.IsInf(f, 0):
			return fmt.Errorf("probability of class %d is infinite", c)
		case f < 0:
			return fmt.Errorf("probability of class %d is negative (%g)", c, f)
		}
		sum += f
	}
	if sum <= 0 {
		return errors.New("probabilities sum to zero")
	}
	return nil
}

// Argmax returns the index of the largest value in p, the lowest such
// index on ties, or -1 when p is empty. NaN values are never selected
// unless every value is NaN, in which case 0 is returned.
func Argmax(p []float32) int {
	if len(p) == 0 {
		return -1
	}
	best := 0
	for i, v := range p {
		if v > p[best] || (p[best] != p[best] && v == v) { // v == v: v is not NaN
			best = i
		}
	}
	return best
}

// confidence returns the predicted class and its probability after
// renormalising probs to sum to one. The confidence is NaN when probs is
// empty or does not have a positive finite sum.
func confidence(probs []float32) (class int, conf float64) {
	class = Argmax(probs)
	if class < 0 {
		return -1, math.NaN()
	}
	return class, normalisedProb(probs, class)
}

// normalisedProb returns probs[i] / sum(probs), or NaN when the sum is not
// a positive finite number.
func normalisedProb(probs []float32, i int) float64 {
	var sum float64
	for _, v := range probs {
		sum += float64(v)
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return math.NaN()
	}
	return float64(probs[i]) / sum
}

// AverageProbs averages several probability vectors element-wise. It is
// how test-time over-sampling combines the softmax outputs of the crops of
// one image (for example 10-crop: the four corners and centre plus their
// mirror images) into one prediction.
//
// AverageProbs returns nil for no crops and panics if the crops do not all
// have the same length, since that is a programming error in the caller.
// The sums are accumulated in float64.
func AverageProbs(crops [][]float32) []float32 {
	if len(crops) == 0 {
		return nil
	}
	k := len(crops[0])
	sum := make([]float64, k)
	for i, c := range crops {
		if len(c) != k {
			panic(fmt.Sprintf("eval: AverageProbs: crop %d has %d values, crop 0 has %d", i, len(c), k))
		}
		for j, v := range c {
			sum[j] += float64(v)
		}
	}
	out := make([]float32, k)
	n := float64(len(crops))
	for j, s := range sum {
		out[j] = float32(s / n)
	}
	return out
}

// MeanStd returns the mean and the sample standard deviation (dividing by
// n-1) of xs, the usual way to report a metric over cross-validation
// folds. The standard deviation of a single value is 0; both results are
// NaN when xs is empty.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) == 1 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		d := x - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// FormatMeanStd formats a mean and standard deviation given as fractions
// as percentages with one decimal, for example FormatMeanStd(0.843, 0.012)
// returns "84.3 ± 1.2".
func FormatMeanStd(mean, std float64) string {
	return fmt.Sprintf("%.1f ± %.1f", 100*mean, 100*std)
}
