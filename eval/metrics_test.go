package eval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

const tol = 1e-6

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps }

var genderNames = []string{"male", "female"}

var ageNames = []string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}

// genderPreds is a hand-made binary example:
//
//	#  label  probs        pred  conf  ECE bin (of 15)
//	0  male   [.90, .10]   male  .90   13 = (13/15, 14/15]  correct
//	1  male   [.08, .92]   fem.  .92   13                   wrong
//	2  fem.   [.15, .85]   fem.  .85   12 = (12/15, 13/15]  correct
//	3  fem.   [.45, .55]   fem.  .55    8 = ( 8/15,  9/15]  correct
func genderPreds() []Prediction {
	return []Prediction{
		{Label: 0, Probs: []float32{0.90, 0.10}},
		{Label: 0, Probs: []float32{0.08, 0.92}},
		{Label: 1, Probs: []float32{0.15, 0.85}},
		{Label: 1, Probs: []float32{0.45, 0.55}},
	}
}

func TestEvaluateBinaryByHand(t *testing.T) {
	r, err := Evaluate("gender", genderNames, false, genderPreds())
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 4 || r.Task != "gender" || r.Ordered {
		t.Errorf("header = %q n=%d ordered=%v", r.Task, r.N, r.Ordered)
	}
	if !near(r.Accuracy, 0.75, tol) {
		t.Errorf("accuracy = %v, want 0.75", r.Accuracy)
	}
	if r.OneOff != 0 {
		t.Errorf("one-off = %v for unordered classes, want 0", r.OneOff)
	}
	wantConf := [][]int{{1, 1}, {0, 2}}
	for i := range wantConf {
		for j := range wantConf[i] {
			if r.Confusion[i][j] != wantConf[i][j] {
				t.Fatalf("confusion = %v, want %v", r.Confusion, wantConf)
			}
		}
	}
	// male: predicted once, right once; 2 true males, 1 found.
	// female: predicted 3 times, right twice; 2 true females, both found.
	checkVec(t, "precision", r.Precision, []float64{1, 2.0 / 3})
	checkVec(t, "recall", r.Recall, []float64{0.5, 1})
	checkVec(t, "F1", r.F1, []float64{2.0 / 3, 0.8})

	// Bin 13 holds .90 (right) and .92 (wrong): |0.5 - 0.91| * 2 = 0.82.
	// Bin 12: |1 - .85| = .15. Bin 8: |1 - .55| = .45. ECE = 1.42 / 4.
	if !near(r.ECE, 1.42/4, 1e-6) {
		t.Errorf("ECE = %v, want %v", r.ECE, 1.42/4)
	}
	wantNLL := -(math.Log(0.90) + math.Log(0.08) + math.Log(0.85) + math.Log(0.55)) / 4
	if !near(r.NLL, wantNLL, 1e-6) {
		t.Errorf("NLL = %v, want %v", r.NLL, wantNLL)
	}
}

func checkVec(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", name, got, want)
	}
	for i := range got {
		if !near(got[i], want[i], tol) {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

// peaked returns k probabilities with 0.65 on class c and the remaining
// 0.35 spread evenly.
func peaked(k, c int) []float32 {
	p := make([]float32, k)
	for i := range p {
		p[i] = 0.35 / float32(k-1)
	}
	p[c] = 0.65
	return p
}

func TestEvaluateOrderedOneOff(t *testing.T) {
	// (label -> predicted): 0->0 exact, 3->4 one off, 3->1 two off,
	// 7->6 one off, 5->5 exact. Accuracy 2/5, 1-off 4/5.
	pairs := [][2]int{{0, 0}, {3, 4}, {3, 1}, {7, 6}, {5, 5}}
	var preds []Prediction
	for _, lp := range pairs {
		preds = append(preds, Prediction{Label: lp[0], Probs: peaked(8, lp[1])})
	}
	r, err := Evaluate("age", ageNames, true, preds)
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.Accuracy, 0.4, tol) || !near(r.OneOff, 0.8, tol) {
		t.Errorf("accuracy, 1-off = %v, %v; want 0.4, 0.8", r.Accuracy, r.OneOff)
	}
	for _, lp := range pairs {
		if r.Confusion[lp[0]][lp[1]] != 1 && lp[0] != 3 {
			t.Errorf("confusion[%d][%d] = %d, want 1", lp[0], lp[1], r.Confusion[lp[0]][lp[1]])
		}
	}
	if r.Confusion[3][4] != 1 || r.Confusion[3][1] != 1 || r.Confusion[3][3] != 0 {
		t.Errorf("confusion row 3 = %v", r.Confusion[3])
	}
	total := 0
	for _, row := range r.Confusion {
		for _, v := range row {
			total += v
		}
	}
	if total != 5 {
		t.Errorf("confusion total = %d, want 5", total)
	}
	// Class 3 never predicted and never found: precision and recall 0,
	// not NaN. Class 1 predicted once, wrongly; never occurs.
	if r.Precision[3] != 0 || r.Recall[3] != 0 || r.F1[3] != 0 || r.Precision[1] != 0 {
		t.Errorf("empty-class metrics = P%v R%v F%v", r.Precision, r.Recall, r.F1)
	}
	// All five have confidence 0.65, in bin 9 = (0.6, 0.6667]:
	// ECE = |0.4 - 0.65|.
	if !near(r.ECE, 0.25, 1e-6) {
		t.Errorf("ECE = %v, want 0.25", r.ECE)
	}
	if !near(r.NLL, -(2*math.Log(0.65)+3*math.Log(0.05))/5, 1e-6) {
		t.Errorf("NLL = %v", r.NLL)
	}
}

func TestEvaluateRenormalisesAndFloorsNLL(t *testing.T) {
	// Probabilities scaled by 2 mean the same thing; a zero probability on
	// the true class gives a finite NLL of -ln(1e-12).
	r, err := Evaluate("g", genderNames, false, []Prediction{
		{Label: 0, Probs: []float32{1.8, 0.2}},
		{Label: 1, Probs: []float32{1, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := (-math.Log(0.9) - math.Log(1e-12)) / 2
	if !near(r.NLL, want, 1e-6) {
		t.Errorf("NLL = %v, want %v", r.NLL, want)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

func TestEvaluateErrors(t *testing.T) {
	ok := []float32{0.5, 0.5}
	cases := []struct {
		name  string
		names []string
		preds []Prediction
		want  string
	}{
		{"empty", genderNames, nil, "no predictions"},
		{"one class", []string{"x"}, []Prediction{{0, []float32{1}}}, "at least 2 classes"},
		{"negative label", genderNames, []Prediction{{-1, ok}}, "label -1 out of range"},
		{"label too big", genderNames, []Prediction{{0, ok}, {2, ok}}, "prediction 1: label 2 out of range"},
		{"short probs", genderNames, []Prediction{{0, []float32{1}}}, "got 1 probabilities, want 2"},
		{"long probs", genderNames, []Prediction{{0, []float32{0.2, 0.3, 0.5}}}, "got 3 probabilities"},
		{"NaN", genderNames, []Prediction{{0, []float32{float32(math.NaN()), 0.5}}}, "NaN"},
		{"Inf", genderNames, []Prediction{{0, []float32{float32(math.Inf(1)), 0.5}}}, "infinite"},
		{"negative", genderNames, []Prediction{{0, []float32{-0.1, 1.1}}}, "negative"},
		{"zero sum", genderNames, []Prediction{{0, []float32{0, 0}}}, "sum to zero"},
	}
	for _, c := range cases {
		_, err := Evaluate("t", c.names, false, c.preds)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		p    []float32
		want int
	}{
		{nil, -1},
		{[]float32{0.1}, 0},
		{[]float32{0.1, 0.7, 0.2}, 1},
		{[]float32{0.4, 0.2, 0.4}, 0}, // ties go to the lowest index
		{[]float32{-3, -1, -2}, 1},
		{[]float32{nan, 0.2, 0.5}, 2},
		{[]float32{0.3, nan, 0.2}, 0},
		{[]float32{nan, nan}, 0},
	}
	for _, c := range cases {
		if got := Argmax(c.p); got != c.want {
			t.Errorf("Argmax(%v) = %d, want %d", c.p, got, c.want)
		}
	}
}

func TestAverageProbs(t *testing.T) {
	got := AverageProbs([][]float32{{0.2, 0.8, 0}, {0.6, 0.4, 0}, {0.1, 0.3, 0.6}})
	want := []float64{0.3, 0.5, 0.2}
	for i := range want {
		if !near(float64(got[i]), want[i], 1e-6) {
			t.Fatalf("AverageProbs = %v, want %v", got, want)
		}
	}
	if AverageProbs(nil) != nil {
		t.Error("AverageProbs(nil) != nil")
	}
	one := []float32{0.25, 0.75}
	if got := AverageProbs([][]float32{one}); got[0] != 0.25 || got[1] != 0.75 {
		t.Errorf("AverageProbs of one crop = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("AverageProbs with ragged crops did not panic")
		}
	}()
	AverageProbs([][]float32{{1, 0}, {1}})
}

func TestMeanStd(t *testing.T) {
	// Mean 5; squared deviations sum to 32; sample variance 32/7.
	m, s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if !near(m, 5, 1e-12) || !near(s, math.Sqrt(32.0/7), 1e-12) {
		t.Errorf("MeanStd = %v, %v; want 5, %v", m, s, math.Sqrt(32.0/7))
	}
	if m, s := MeanStd([]float64{0.8}); m != 0.8 || s != 0 {
		t.Errorf("MeanStd of one value = %v, %v; want 0.8, 0", m, s)
	}
	if m, s := MeanStd(nil); !math.IsNaN(m) || !math.IsNaN(s) {
		t.Errorf("MeanStd(nil) = %v, %v; want NaN, NaN", m, s)
	}
	if got := FormatMeanStd(0.843, 0.012); got != "84.3 ± 1.2" {
		t.Errorf("FormatMeanStd = %q", got)
	}
	m, s = MeanStd([]float64{0.85, 0.83, 0.84, 0.86, 0.82})
	if got := FormatMeanStd(m, s); got != "84.0 ± 1.6" {
		t.Errorf("FormatMeanStd over folds = %q, want %q", got, "84.0 ± 1.6")
	}
}

func TestReportString(t *testing.T) {
	r, err := Evaluate("gender", genderNames, false, genderPreds())
	if err != nil {
		t.Fatal(err)
	}
	got := r.String()
	for _, want := range []string{
		"task: gender  n=4\n",
		"accuracy: 75.0%\n",
		"ECE: 0.355",
		"confusion matrix (rows: true, columns: predicted)\n" +
			"          male  female\n" +
			"  male       1       1\n" +
			"female       0       2\n",
		" class  precision  recall      F1  support\n" +
			"  male      1.000   0.500   0.667        2\n" +
			"female      0.667   1.000   0.800        2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("String() lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "1-off") {
		t.Errorf("unordered report shows 1-off:\n%s", got)
	}

	var preds []Prediction
	for c := range ageNames {
		preds = append(preds, Prediction{Label: c, Probs: peaked(8, min(c+1, 7))})
	}
	age, err := Evaluate("age", ageNames, true, preds)
	if err != nil {
		t.Fatal(err)
	}
	s := age.String()
	if !strings.Contains(s, "accuracy: 12.5%  1-off: 100.0%") || !strings.Contains(s, "60-100") {
		t.Errorf("age String():\n%s", s)
	}
}

func TestReportJSON(t *testing.T) {
	r, err := Evaluate("gender", genderNames, false, genderPreds())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"task", "class_names", "n", "accuracy", "one_off", "ordered",
		"confusion", "precision", "recall", "f1", "ece", "nll"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks key %q: %s", k, b)
		}
	}
	if len(m) != 12 {
		t.Errorf("JSON has %d keys, want 12: %s", len(m), b)
	}
	if m["accuracy"] != 0.75 || m["task"] != "gender" {
		t.Errorf("JSON values: %s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Confusion[0][1] != 1 || back.F1[1] != r.F1[1] {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestBreakdown(t *testing.T) {
	preds := []Prediction{
		{Label: 4, Probs: peaked(8, 4)}, // exact
		{Label: 4, Probs: peaked(8, 5)}, // one off
		{Label: 2, Probs: peaked(8, 6)}, // far off
		{Label: 0, Probs: peaked(8, 0)}, // exact
		{Label: 7, Probs: peaked(8, 6)}, // one off
	}
	keys := []string{"male/25-32", "male/25-32", "female/8-12", "female/0-2", "male/25-32"}
	got := Breakdown(preds, keys, true)
	want := []Group{
		{Key: "female/0-2", N: 1, Accuracy: 1, OneOff: 1},
		{Key: "female/8-12", N: 1, Accuracy: 0, OneOff: 0},
		{Key: "male/25-32", N: 3, Accuracy: 1.0 / 3, OneOff: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("Breakdown = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.N != w.N || !near(g.Accuracy, w.Accuracy, tol) || !near(g.OneOff, w.OneOff, tol) {
			t.Errorf("group %d = %+v, want %+v", i, g, w)
		}
	}
	for _, g := range Breakdown(preds, keys, false) {
		if g.OneOff != 0 {
			t.Errorf("unordered breakdown has 1-off %v", g.OneOff)
		}
	}
	if len(Breakdown(nil, nil, false)) != 0 {
		t.Error("Breakdown of nothing is not empty")
	}
	defer func() {
		if recover() == nil {
			t.Error("Breakdown with mismatched keys did not panic")
		}
	}()
	Breakdown(preds, keys[:2], false)
}
