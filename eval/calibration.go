package eval

import (
	"errors"
	"fmt"
	"math"
)

// Bin is one confidence interval of a reliability diagram.
type Bin struct {
	// Lo and Hi bound the confidences that fall in the bin: (Lo, Hi],
	// except that the first bin also holds a confidence of exactly Lo.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Confidence is the mean maximum probability of the bin's predictions.
	Confidence float64 `json:"confidence"`
	// Accuracy is the fraction of the bin's predictions that were right.
	Accuracy float64 `json:"accuracy"`
	// Count is the number of predictions in the bin. Confidence and
	// Accuracy are zero when Count is zero.
	Count int `json:"count"`
}

// ReliabilityBins sorts predictions into the given number of equal-width
// intervals of their confidence (the largest renormalised probability)
// and reports, per bin, the mean confidence and the accuracy. For a calibrated model
// the two agree in every bin; plotted against each other (see
// SaveReliabilityPNG) they form a reliability diagram.
//
// All bins are returned, including empty ones. Predictions whose
// probabilities cannot be normalised (empty, NaN, zero sum) are skipped.
// ReliabilityBins returns nil when bins < 1.
func ReliabilityBins(preds []Prediction, bins int) []Bin {
	if bins < 1 {
		return nil
	}
	out := make([]Bin, bins)
	for i := range out {
		out[i].Lo = float64(i) / float64(bins)
		out[i].Hi = float64(i+1) / float64(bins)
	}
	correct := make([]int, bins)
	for _, p := range preds {
		class, conf := confidence(p.Probs)
		if math.IsNaN(conf) {
			continue
		}
		// Bin i holds (i/bins, (i+1)/bins]; confidence 0 goes to bin 0.
		i := int(math.Ceil(conf*float64(bins))) - 1
		i = max(0, min(i, bins-1))
		out[i].Count++
		out[i].Confidence += conf
		if class == p.Label {
			correct[i]++
		}
	}
	for i := range out {
		if n := out[i].Count; n > 0 {
			out[i].Confidence /= float64(n)
			out[i].Accuracy = float64(correct[i]) / float64(n)
		}
	}
	return out
}

// ECE returns the expected calibration error of a set of reliability
// bins: the average of |Accuracy - Confidence| over bins, weighted by
// Count. It returns 0 when the bins hold no predictions.
func ECE(bins []Bin) float64 {
	var total int
	var sum float64
	for _, b := range bins {
		total += b.Count
		sum += float64(b.Count) * math.Abs(b.Accuracy-b.Confidence)
	}
	if total == 0 {
		return 0
	}
	return sum / float64(total)
}

// Temperature search interval for FitTemperature.
const (
	minTemperature = 0.05
	maxTemperature = 20
)

// FitTemperature fits the temperature T of temperature scaling: the T > 0
// that minimises the mean negative log-likelihood of softmax(logits/T)
// on held-out data (a validation set, never the test set).
//
// The mean NLL is a convex function of 1/T, hence unimodal in log T, so a
// golden-section search over log T in [0.05, 20] finds the global
// minimum; a result at either end of that range means the optimum lies
// beyond it. T > 1 means the model was over-confident.
//
// logits[i] are the raw (pre-softmax) outputs for example i and labels[i]
// its true class. All rows must have the same length K >= 2, labels must
// be in [0, K) and logits must be finite.
func FitTemperature(logits [][]float32, labels []int) (float64, error) {
	if len(logits) == 0 {
		return 0, errors.New("eval: FitTemperature: no examples")
	}
	if len(logits) != len(labels) {
		return 0, fmt.Errorf("eval: FitTemperature: %d logit rows but %d labels", len(logits), len(labels))
	}
	k := len(logits[0])
	if k < 2 {
		return 0, fmt.Errorf("eval: FitTemperature: need at least 2 classes, got %d", k)
	}
	// Copy to float64 once; the objective is evaluated ~60 times.
	z := make([][]float64, len(logits))
	for i, row := range logits {
		if len(row) != k {
			return 0, fmt.Errorf("eval: FitTemperature: row %d has %d logits, row 0 has %d", i, len(row), k)
		}
		if labels[i] < 0 || labels[i] >= k {
			return 0, fmt.Errorf("eval: FitTemperature: label %d of example %d out of range [0, %d)", labels[i], i, k)
		}
		z[i] = make([]float64, k)
		for j, v := range row {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return 0, fmt.Errorf("eval: FitTemperature: logit %d of example %d is %g", j, i, f)
			}
			z[i][j] = f
		}
	}

	nll := func(logT float64) float64 {
		inv := math.Exp(-logT)
		var sum float64
		for i, row := range z {
			sum += logSumExp(row, inv) - inv*row[labels[i]]
		}
		return sum / float64(len(z))
	}

	// Golden-section search: keep a bracket [a, b] and two interior
	// points c < d at the golden ratio, discarding the side whose interior
	// point is worse. Each step shrinks the bracket by 0.618.
	const invPhi = 0.6180339887498949 // (√5 − 1) / 2
	a, b := math.Log(minTemperature), math.Log(maxTemperature)
	c, d := b-invPhi*(b-a), a+invPhi*(b-a)
	fc, fd := nll(c), nll(d)
	for b-a > 1e-6 {
		if fc < fd {
			b, d, fd = d, c, fc
			c = b - invPhi*(b-a)
			fc = nll(c)
		} else {
			a, c, fc = c, d, fd
			d = a + invPhi*(b-a)
			fd = nll(d)
		}
	}
	return math.Exp((a + b) / 2), nil
}

// logSumExp returns log Σ exp(scale·x_j), computed stably by factoring out
// the largest term.
func logSumExp(x []float64, scale float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, scale*v)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(scale*v - m)
	}
	return m + math.Log(s)
}

// ApplyTemperature returns softmax(logits/T): the class probabilities of
// a temperature-scaled model. T = 1 is the plain softmax; larger T gives
// flatter, less confident probabilities, and the arg-max never changes.
// It panics if T is not a positive finite number.
func ApplyTemperature(logits []float32, T float64) []float32 {
	if !(T > 0) || math.IsInf(T, 0) {
		panic(fmt.Sprintf("eval: ApplyTemperature: temperature must be positive and finite, got %g", T))
	}
	if len(logits) == 0 {
		return nil
	}
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v)/T)
	}
	e := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		e[i] = math.Exp(float64(v)/T - m)
		sum += e[i]
	}
	out := make([]float32, len(logits))
	for i := range e {
		out[i] = float32(e[i] / sum)
	}
	return out
}
