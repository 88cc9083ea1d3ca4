// Command summarize turns the outputs of bench/accuracy.sh into one Markdown
// table comparing the Go (GoMLX) and PyTorch runs of the same net:
//
//	go run ./bench/summarize OUTDIR > OUTDIR/summary.md
//
// It reads, each one optional:
//
//	OUTDIR/machine.txt               printed verbatim as a header block
//	OUTDIR/{gender,age}_eval.json    Go: agegender eval --json ("center", "ten_crop" reports)
//	OUTDIR/{gender,age}/history.json Go: per-epoch seconds and img/s (train time, img/s, epochs)
//	OUTDIR/torch_{gender,age}.json   PyTorch: bench/torch_origin.py --out
//
// One row per (implementation, task) whose results exist; a missing or
// unreadable file gives a note line, a missing field "–".
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const dash = "–"

var tasks = []string{"gender", "age"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/summarize OUTDIR")
		os.Exit(2)
	}
	if err := summarize(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
}

// report is the part of eval.Report the table needs; pointers tell a
// missing field from a zero.
type report struct {
	N        *int     `json:"n"`
	Accuracy *float64 `json:"accuracy"`
	OneOff   *float64 `json:"one_off"`
}

type goEval struct {
	Center  *report `json:"center"`
	TenCrop *report `json:"ten_crop"`
}

type epoch struct {
	Seconds   *float64 `json:"seconds"`
	ImgPerSec *float64 `json:"img_per_sec"`
}

type torchResult struct {
	Task           string   `json:"task"`
	Input          *int     `json:"input"`
	Epochs         *int     `json:"epochs"`
	NTest          *int     `json:"n_test"`
	CenterAcc      *float64 `json:"test_center_acc"`
	TenCropAcc     *float64 `json:"test_tencrop_acc"`
	CenterOneOff   *float64 `json:"test_center_oneoff"`
	TenCropOneOff  *float64 `json:"test_tencrop_oneoff"`
	TrainSeconds   *float64 `json:"train_seconds"`
	TrainImgPerSec *float64 `json:"train_img_per_sec"`
	History        []epoch  `json:"history"`
}

type row struct {
	impl, task, input, epochs, n, cAcc, tAcc, cOne, tOne, secs, ips string
}

func summarize(dir string, w io.Writer) error {
	if st, err := os.Stat(dir); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }

	machine, err := os.ReadFile(filepath.Join(dir, "machine.txt"))
	switch {
	case err == nil:
		fmt.Fprintf(w, "```\n%s\n```\n\n", strings.TrimRight(string(machine), "\n"))
	case errors.Is(err, fs.ErrNotExist):
		note("machine.txt missing")
	default:
		note("machine.txt: %v", err)
	}
	goInput := dash
	if m := regexp.MustCompile(`\bINPUT=(\d+)`).FindSubmatch(machine); m != nil {
		goInput = string(m[1])
	}

	var rows []row
	for _, task := range tasks {
		var ev goEval
		name := task + "_eval.json"
		if !readJSON(filepath.Join(dir, name), &ev, name, note) {
			continue
		}
		r := row{impl: "Go (GoMLX)", task: task, input: goInput, epochs: dash, secs: dash, ips: dash}
		if ev.Center != nil {
			r.n, r.cAcc, r.cOne = intOr(ev.Center.N), pct(ev.Center.Accuracy), pct(ev.Center.OneOff)
		} else {
			r.n, r.cAcc, r.cOne = dash, dash, dash
		}
		if ev.TenCrop != nil {
			r.tAcc, r.tOne = pct(ev.TenCrop.Accuracy), pct(ev.TenCrop.OneOff)
			if r.n == dash {
				r.n = intOr(ev.TenCrop.N)
			}
		} else {
			r.tAcc, r.tOne = dash, dash
		}
		if task != "age" {
			r.cOne, r.tOne = dash, dash
		}
		hname := filepath.Join(task, "history.json")
		if hist, ok := readHistory(filepath.Join(dir, hname), hname, note); ok {
			r.epochs = strconv.Itoa(len(hist))
			r.secs, r.ips = historyTiming(hist)
		}
		rows = append(rows, r)
	}
	for _, task := range tasks {
		var t torchResult
		name := "torch_" + task + ".json"
		if !readJSON(filepath.Join(dir, name), &t, name, note) {
			continue
		}
		if t.Task != "" && t.Task != task {
			note("%s says task %q", name, t.Task)
		}
		r := row{impl: "PyTorch", task: task, input: intOr(t.Input), epochs: intOr(t.Epochs), n: intOr(t.NTest),
			cAcc: pct(t.CenterAcc), tAcc: pct(t.TenCropAcc), cOne: pct(t.CenterOneOff), tOne: pct(t.TenCropOneOff),
			secs: duration(t.TrainSeconds), ips: rate(t.TrainImgPerSec)}
		if task != "age" {
			r.cOne, r.tOne = dash, dash
		}
		if t.TrainSeconds == nil && len(t.History) > 0 {
			r.secs, r.ips = historyTiming(t.History)
		}
		rows = append(rows, r)
	}

	fmt.Fprintln(w, "| impl | task | input | epochs | test n | centre acc | 10-crop acc | centre 1-off | 10-crop 1-off | train time | train img/s |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.impl, r.task, r.input, r.epochs, r.n, r.cAcc, r.tAcc, r.cOne, r.tOne, r.secs, r.ips)
	}
	if len(rows) == 0 {
		notes = append([]string{"no results found in " + dir}, notes...)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "_Note: %s._\n", n)
		}
	}
	return nil
}

// readJSON decodes path into v, adding a note and returning false if the
// file is missing or not valid JSON.
func readJSON(path string, v any, name string, note func(string, ...any)) bool {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		note("%s missing, skipped", name)
		return false
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		note("%s unreadable, skipped (%v)", name, err)
		return false
	}
	return true
}

// readHistory accepts the Go trainer's array of epochs, or an object with
// a "history" array. A missing file is silent: the columns show "–".
func readHistory(path, name string, note func(string, ...any)) ([]epoch, bool) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	var hist []epoch
	if err == nil {
		if err = json.Unmarshal(b, &hist); err != nil {
			var obj struct {
				History []epoch `json:"history"`
			}
			if json.Unmarshal(b, &obj) == nil && obj.History != nil {
				hist, err = obj.History, nil
			}
		}
	}
	if err != nil {
		note("%s unreadable, timing skipped (%v)", name, err)
		return nil, false
	}
	return hist, true
}

// historyTiming is the summed seconds and the mean img/s over the epochs
// that report them.
func historyTiming(hist []epoch) (secs, ips string) {
	var s, r float64
	var ns, nr int
	for _, e := range hist {
		if e.Seconds != nil {
			s += *e.Seconds
			ns++
		}
		if e.ImgPerSec != nil {
			r += *e.ImgPerSec
			nr++
		}
	}
	secs, ips = dash, dash
	if ns > 0 {
		secs = duration(&s)
	}
	if nr > 0 {
		r /= float64(nr)
		ips = rate(&r)
	}
	return secs, ips
}

func pct(v *float64) string {
	if v == nil {
		return dash
	}
	return fmt.Sprintf("%.2f%%", 100**v)
}

func intOr(v *int) string {
	if v == nil {
		return dash
	}
	return strconv.Itoa(*v)
}

func rate(v *float64) string {
	if v == nil {
		return dash
	}
	return fmt.Sprintf("%.1f", *v)
}

// duration formats seconds as "42.0 s", "12m05s" or "2h03m".
func duration(v *float64) string {
	if v == nil {
		return dash
	}
	s := *v
	switch {
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 3600:
		t := int(s + 0.5)
		return fmt.Sprintf("%dm%02ds", t/60, t%60)
	}
	t := int(s/60 + 0.5)
	return fmt.Sprintf("%dh%02dm", t/60, t%60)
}
