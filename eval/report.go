package eval

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String renders the report as plain text: a header with the task, the
// number of examples and the headline metrics, the confusion matrix as an
// aligned table (rows are true classes, columns predicted classes) and a
// per-class table of precision, recall, F1 and support. For example:
//
//	task: gender  n=4
//	accuracy: 75.0%
//	ECE: 0.355  NLL: 0.848
//
//	confusion matrix (rows: true, columns: predicted)
//	          male  female
//	  male       1       1
//	female       0       2
//
//	 class  precision  recall      F1  support
//	  male      1.000   0.500   0.667        2
//	female      0.667   1.000   0.800        2
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task: %s  n=%d\n", r.Task, r.N)
	fmt.Fprintf(&b, "accuracy: %.1f%%", 100*r.Accuracy)
	if r.Ordered {
		fmt.Fprintf(&b, "  1-off: %.1f%%", 100*r.OneOff)
	}
	fmt.Fprintf(&b, "\nECE: %.3f  NLL: %.3f\n", r.ECE, r.NLL)

	k := len(r.ClassNames)
	if k == 0 || len(r.Confusion) != k {
		return b.String()
	}

	// Confusion matrix. Every column is as wide as the widest class name
	// or count, and the first column as wide as the widest class name.
	nameW := 0
	for _, name := range r.ClassNames {
		nameW = max(nameW, utf8.RuneCountInString(name))
	}
	cellW := nameW
	for _, row := range r.Confusion {
		for _, v := range row {
			cellW = max(cellW, len(fmt.Sprint(v)))
		}
	}
	b.WriteString("\nconfusion matrix (rows: true, columns: predicted)\n")
	b.WriteString(strings.Repeat(" ", nameW))
	for _, name := range r.ClassNames {
		b.WriteString("  " + padLeft(name, cellW))
	}
	b.WriteByte('\n')
	for t, row := range r.Confusion {
		b.WriteString(padLeft(r.ClassNames[t], nameW))
		for _, v := range row {
			b.WriteString("  " + padLeft(fmt.Sprint(v), cellW))
		}
		b.WriteByte('\n')
	}

	// Per-class metrics, with support (the number of true examples).
	if len(r.Precision) != k || len(r.Recall) != k || len(r.F1) != k {
		return b.String()
	}
	labelW := max(nameW, len("class"))
	fmt.Fprintf(&b, "\n%s  %9s  %6s  %6s  %7s\n", padLeft("class", labelW), "precision", "recall", "F1", "support")
	for c, name := range r.ClassNames {
		support := 0
		for _, v := range r.Confusion[c] {
			support += v
		}
		fmt.Fprintf(&b, "%s  %9.3f  %6.3f  %6.3f  %7d\n",
			padLeft(name, labelW), r.Precision[c], r.Recall[c], r.F1[c], support)
	}
	return b.String()
}

// padLeft right-aligns s in a field of width runes.
func padLeft(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return strings.Repeat(" ", width-n) + s
	}
	return s
}
