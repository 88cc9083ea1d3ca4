package eval

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestReliabilityBins(t *testing.T) {
	bins := ReliabilityBins(genderPreds(), 15)
	if len(bins) != 15 {
		t.Fatalf("got %d bins, want 15", len(bins))
	}
	for i, b := range bins {
		if !near(b.Lo, float64(i)/15, 1e-12) || !near(b.Hi, float64(i+1)/15, 1e-12) {
			t.Errorf("bin %d spans [%v, %v]", i, b.Lo, b.Hi)
		}
		switch i {
		case 13:
			if b.Count != 2 || !near(b.Confidence, 0.91, 1e-6) || b.Accuracy != 0.5 {
				t.Errorf("bin 13 = %+v, want 2 predictions, confidence .91, accuracy .5", b)
			}
		case 12:
			if b.Count != 1 || !near(b.Confidence, 0.85, 1e-6) || b.Accuracy != 1 {
				t.Errorf("bin 12 = %+v", b)
			}
		case 8:
			if b.Count != 1 || !near(b.Confidence, 0.55, 1e-6) || b.Accuracy != 1 {
				t.Errorf("bin 8 = %+v", b)
			}
		default:
			if b.Count != 0 || b.Confidence != 0 || b.Accuracy != 0 {
				t.Errorf("bin %d should be empty: %+v", i, b)
			}
		}
	}
	if !near(ECE(bins), 0.355, 1e-6) {
		t.Errorf("ECE = %v, want 0.355", ECE(bins))
	}

	// Edges: confidence 1 goes in the last bin, 0.5 (a bin edge with 2
	// bins) in the lower one, and unusable predictions are skipped.
	edge := ReliabilityBins([]Prediction{
		{Label: 0, Probs: []float32{1, 0}},
		{Label: 1, Probs: []float32{0.5, 0.5}},
		{Label: 0, Probs: []float32{0, 0}},
		{Label: 0, Probs: nil},
	}, 2)
	if edge[0].Count != 1 || edge[0].Accuracy != 0 || edge[1].Count != 1 || edge[1].Accuracy != 1 {
		t.Errorf("edge bins = %+v", edge)
	}
	if ReliabilityBins(genderPreds(), 0) != nil {
		t.Error("ReliabilityBins with 0 bins is not nil")
	}
	if ECE(nil) != 0 {
		t.Error("ECE(nil) != 0")
	}
}

func TestApplyTemperature(t *testing.T) {
	logits := []float32{1, 2, 3}
	// softmax([1,2,3]) = e^i / (e + e^2 + e^3).
	sum := math.E + math.Exp(2) + math.Exp(3)
	got := ApplyTemperature(logits, 1)
	for i, want := range []float64{math.E / sum, math.Exp(2) / sum, math.Exp(3) / sum} {
		if !near(float64(got[i]), want, 1e-6) {
			t.Fatalf("softmax = %v", got)
		}
	}
	// T = 2 equals the plain softmax of halved logits.
	half := ApplyTemperature([]float32{0.5, 1, 1.5}, 1)
	for i, p := range ApplyTemperature(logits, 2) {
		if !near(float64(p), float64(half[i]), 1e-6) {
			t.Fatalf("T=2 gave %v, want %v", ApplyTemperature(logits, 2), half)
		}
	}
	// Huge logits do not overflow; a large T approaches uniform.
	big := ApplyTemperature([]float32{1000, 0}, 1)
	if big[0] != 1 || big[1] != 0 {
		t.Errorf("softmax of huge logits = %v", big)
	}
	flat := ApplyTemperature(logits, 1e6)
	if !near(float64(flat[0]), 1.0/3, 1e-5) || Argmax(flat) != 2 {
		t.Errorf("T=1e6 gave %v", flat)
	}
	defer func() {
		if recover() == nil {
			t.Error("ApplyTemperature(T=0) did not panic")
		}
	}()
	ApplyTemperature(logits, 0)
}

// sample draws a class from the probabilities p.
func sample(rng *rand.Rand, p []float32) int {
	u := rng.Float64()
	var c float64
	for i, v := range p {
		c += float64(v)
		if u < c {
			return i
		}
	}
	return len(p) - 1
}

func TestFitTemperatureRecoversKnownTemperature(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, trueT := range []float64{2, 0.5} {
		const n, k = 5000, 8
		logits := make([][]float32, n)
		labels := make([]int, n)
		for i := range logits {
			logits[i] = make([]float32, k)
			for j := range logits[i] {
				logits[i][j] = float32(3 * rng.NormFloat64())
			}
			labels[i] = sample(rng, ApplyTemperature(logits[i], trueT))
		}
		got, err := FitTemperature(logits, labels)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-trueT) > 0.1*trueT {
			t.Errorf("FitTemperature = %.3f, want %.1f ± 10%%", got, trueT)
		} else {
			t.Logf("true T %.1f, fitted %.3f", trueT, got)
		}
		// Scaling by the fitted T must not make calibration worse.
		var raw, scaled []Prediction
		for i := range logits {
			raw = append(raw, Prediction{Label: labels[i], Probs: ApplyTemperature(logits[i], 1)})
			scaled = append(scaled, Prediction{Label: labels[i], Probs: ApplyTemperature(logits[i], got)})
		}
		names := make([]string, k)
		for i := range names {
			names[i] = string(rune('a' + i))
		}
		r0, _ := Evaluate("t", names, false, raw)
		r1, _ := Evaluate("t", names, false, scaled)
		if r1.NLL > r0.NLL || r1.ECE > r0.ECE || r1.Accuracy != r0.Accuracy {
			t.Errorf("T=%.2f: NLL %v -> %v, ECE %v -> %v, accuracy %v -> %v",
				got, r0.NLL, r1.NLL, r0.ECE, r1.ECE, r0.Accuracy, r1.Accuracy)
		}
	}
}

func TestFitTemperatureErrors(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		logits [][]float32
		labels []int
		want   string
	}{
		{"empty", nil, nil, "no examples"},
		{"mismatch", [][]float32{{1, 2}}, []int{0, 1}, "1 logit rows but 2 labels"},
		{"one class", [][]float32{{1}}, []int{0}, "at least 2 classes"},
		{"ragged", [][]float32{{1, 2}, {1}}, []int{0, 0}, "row 1 has 1 logits"},
		{"label", [][]float32{{1, 2}}, []int{2}, "label 2 of example 0 out of range"},
		{"NaN", [][]float32{{1, nan}}, []int{0}, "logit 1 of example 0 is NaN"},
	}
	for _, c := range cases {
		_, err := FitTemperature(c.logits, c.labels)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want one containing %q", c.name, err, c.want)
		}
	}
}
