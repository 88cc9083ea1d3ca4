package eval

import (
	"fmt"
	"slices"
	"strings"
)

// Group is the accuracy of the predictions that share one key.
type Group struct {
	// Key identifies the group, for example "female/asian/25-32".
	Key string `json:"key"`
	// N is the number of predictions in the group.
	N int `json:"n"`
	// Accuracy is the fraction of the group's predictions that were right.
	Accuracy float64 `json:"accuracy"`
	// OneOff is the fraction at most one class off; zero unless the
	// classes are ordered.
	OneOff float64 `json:"one_off"`
}

// Breakdown splits predictions into groups by keys[i], the caller's
// description of example i, and reports accuracy (and, when ordered is
// true, 1-off accuracy) per group, sorted by key. Comparing groups is a
// first fairness check: a model with 90% overall accuracy may still fail
// one demographic far more often than another.
//
// Keys are opaque strings; build them however is useful, for example by
// joining attributes with "/". Breakdown panics if len(keys) differs from
// len(preds), since that is a programming error in the caller.
func Breakdown(preds []Prediction, keys []string, ordered bool) []Group {
	if len(keys) != len(preds) {
		panic(fmt.Sprintf("eval: Breakdown: %d keys for %d predictions", len(keys), len(preds)))
	}
	type tally struct{ n, correct, oneOff int }
	tallies := make(map[string]*tally)
	for i, p := range preds {
		t := tallies[keys[i]]
		if t == nil {
			t = new(tally)
			tallies[keys[i]] = t
		}
		t.n++
		pred := Argmax(p.Probs)
		if pred == p.Label {
			t.correct++
		}
		if d := pred - p.Label; pred >= 0 && d >= -1 && d <= 1 {
			t.oneOff++
		}
	}
	groups := make([]Group, 0, len(tallies))
	for key, t := range tallies {
		g := Group{Key: key, N: t.n, Accuracy: float64(t.correct) / float64(t.n)}
		if ordered {
			g.OneOff = float64(t.oneOff) / float64(t.n)
		}
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b Group) int { return strings.Compare(a.Key, b.Key) })
	return groups
}
