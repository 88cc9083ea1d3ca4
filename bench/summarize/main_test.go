package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	if err := summarize(dir, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSummarizeAll(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "machine.txt", "date: 2025-01-01\ncommand: bench/accuracy.sh runs/x (INPUT=64 EPOCHS=15 BATCH=50 NET=origin)\n")
	write(t, dir, "gender_eval.json", `{"model":"m","split":"test","center":{"task":"gender","n":2068,"accuracy":0.91234,"one_off":0},
		"ten_crop":{"task":"gender","n":2068,"accuracy":0.9200}}`)
	write(t, dir, "age_eval.json", `{"center":{"task":"age","n":2068,"accuracy":0.55,"one_off":0.875},
		"ten_crop":{"task":"age","n":2068,"accuracy":0.56,"one_off":0.88}}`)
	write(t, dir, "gender/history.json", `[{"epoch":1,"seconds":100,"img_per_sec":170},{"epoch":2,"seconds":200,"img_per_sec":90}]`)
	write(t, dir, "torch_gender.json", `{"framework":"pytorch","task":"gender","input":64,"epochs":15,"n_test":2068,
		"test_center_acc":0.9,"test_tencrop_acc":0.905,"train_seconds":4000,"train_img_per_sec":64.12}`)
	write(t, dir, "torch_age.json", `{"task":"age","input":64,"epochs":15,"n_test":2068,"test_center_acc":0.5,
		"test_tencrop_acc":0.51,"test_center_oneoff":0.8,"test_tencrop_oneoff":0.81234,"train_seconds":59.95}`)
	out := run(t, dir)
	t.Log("\n" + out)
	for _, want := range []string{
		"```\ndate: 2025-01-01\ncommand: bench/accuracy.sh runs/x (INPUT=64 EPOCHS=15 BATCH=50 NET=origin)\n```\n",
		"| Go (GoMLX) | gender | 64 | 2 | 2068 | 91.23% | 92.00% | – | – | 5m00s | 130.0 |",
		"| Go (GoMLX) | age | 64 | – | 2068 | 55.00% | 56.00% | 87.50% | 88.00% | – | – |",
		"| PyTorch | gender | 64 | 15 | 2068 | 90.00% | 90.50% | – | – | 1h07m | 64.1 |",
		"| PyTorch | age | 64 | 15 | 2068 | 50.00% | 51.00% | 80.00% | 81.23% | 60.0 s | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "Note") {
		t.Errorf("unexpected note in full output")
	}
}

func TestSummarizeMissing(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "torch_gender.json", `{"task":"gender"}`)
	write(t, dir, "age_eval.json", `not json`)
	write(t, dir, "gender_eval.json", `{"center":{"n":10}}`)
	write(t, dir, "gender/history.json", `{"history":[{"seconds":3}]}`)
	out := run(t, dir)
	t.Log("\n" + out)
	for _, want := range []string{
		"| Go (GoMLX) | gender | – | 1 | 10 | – | – | – | – | 3.0 s | – |",
		"| PyTorch | gender | – | – | – | – | – | – | – | – | – |",
		"_Note: machine.txt missing._",
		"_Note: age_eval.json unreadable, skipped",
		"_Note: torch_age.json missing, skipped._",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "| age |") {
		t.Errorf("age row printed without results")
	}
}

func TestSummarizeEmptyAndBadDir(t *testing.T) {
	out := run(t, t.TempDir())
	if !strings.Contains(out, "no results found") {
		t.Errorf("empty dir: %s", out)
	}
	if err := summarize(filepath.Join(t.TempDir(), "nope"), &strings.Builder{}); err == nil {
		t.Error("missing dir: no error")
	}
}
