package experiments

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/internal/datatest"
)

// TestSweep runs a tiny sweep on real UTKFace faces — origin for gender,
// one epoch on 24 images per split, and the fine-tuned MobileFaceNet
// transfer row — and checks every row and the table.
func TestSweep(t *testing.T) {
	images := datatest.SharedDir(t, "utkface/images")
	models := datatest.Shared(t, "models/tfjs")
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Run(context.Background(), b, Options{
		Nets: []string{"origin"}, Tasks: []data.Task{data.TaskAge},
		Source: sources.Spec{Kind: "utkface", Dir: images},
		Input:  48, Epochs: 1, Batch: 8, Limit: 24, Seed: 1, OutDir: t.TempDir(),
		Transfer: []string{"mobilefacenet+ft", "nosuchnet"}, ModelsDir: models, TransferEpochs: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (origin, transfer, unknown backbone): %+v", len(rows), rows)
	}
	for _, r := range rows[:2] {
		if r.Error != "" {
			t.Fatalf("%s: %s", r.Net, r.Error)
		}
		if r.N == 0 || len(r.Center) != 1 || r.Center[0] < 0 || r.Center[0] > 1 || len(r.CenterOne) != 1 || r.CenterOne[0] < r.Center[0] {
			t.Errorf("%s: implausible result %+v", r.Net, r)
		}
		if r.Params <= 0 || r.TrainSeconds <= 0 {
			t.Errorf("%s: params %d, train seconds %g", r.Net, r.Params, r.TrainSeconds)
		}
	}
	if len(rows[0].TenCrop) != 1 {
		t.Errorf("origin: no 10-crop result")
	}
	if rows[1].Net != "transfer:mobilefacenet+ft" {
		t.Errorf("second row %q", rows[1].Net)
	}
	if !strings.Contains(rows[2].Error, "unknown backbone") {
		t.Errorf("unknown backbone row: error %q", rows[2].Error)
	}
	out := t.TempDir()
	if err := Save(out, rows); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil || !strings.Contains(string(js), `"Net": "transfer:mobilefacenet+ft"`) {
		t.Errorf("results.json: %v\n%s", err, js)
	}
	table := Table(rows)
	for _, want := range []string{"| origin | age |", "| transfer:mobilefacenet+ft | age |", "failed: unknown backbone"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
