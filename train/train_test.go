package train_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/train"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
)

// utkDir is the shared UTKFace folder (the test skips if it is absent).
func utkDir(t testing.TB) string { return datatest.SharedDir(t, "utkface/images") }

// examples loads n real UTKFace faces (spread over the folder) for task.
func examples(t testing.TB, n, input int, aug prep.Augment) *train.CacheExamples {
	t.Helper()
	all, _, err := utkface.Load(utkDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var picked []data.Sample
	for i := 0; i < n; i++ {
		picked = append(picked, all[i*len(all)/n])
	}
	cfg := prep.Spec{Resize: input + input/8, Crop: input, Workers: 2}
	paths := make([]string, len(picked))
	for i, s := range picked {
		paths[i] = s.Path
	}
	c, errs := prep.BuildCache(context.Background(), paths, cfg, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg.Mean = prep.MeanOf(c)
	labels := make([]int, c.Len())
	for i := range labels {
		labels[i] = data.TaskGender.Label(picked[c.Index(i)])
	}
	return &train.CacheExamples{Cache: c, Labels: labels, Spec: cfg, Augment: aug}
}

func backend(t testing.TB) compute.Backend {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func options(dir string, epochs, batch int) train.Options {
	return train.Options{
		Model:           model.Config{Net: "origin", Classes: 2, Input: 48, Seed: 5},
		Task:            data.TaskGender,
		ClassNames:      []string{"m", "f"},
		Spec:            prep.Spec{Resize: 54},
		Optimizer:       train.Adam,
		LR:              3e-4,
		Batch:           batch,
		Epochs:          epochs,
		CheckpointEvery: 1,
		OutDir:          dir,
		Workers:         2,
	}
}

func TestTrainingLossFalls(t *testing.T) {
	ex := examples(t, 32, 48, prep.Augment{})
	opts := options(t.TempDir(), 12, 16)
	opts.CheckpointEvery = 100
	res, err := train.Run(context.Background(), backend(t), opts, ex, ex)
	if err != nil {
		t.Fatal(err)
	}
	h := res.History
	if len(h) != 12 {
		t.Fatalf("%d epochs recorded, want 12", len(h))
	}
	first, last := h[0].TrainLoss, h[len(h)-1].TrainLoss
	t.Logf("loss %.4f → %.4f, val acc %.3f → %.3f", first, last, h[0].ValAcc, h[len(h)-1].ValAcc)
	if !(last < 0.8*first) {
		t.Errorf("training loss did not fall: %.4f → %.4f", first, last)
	}
	for _, f := range []string{train.ModelName, train.CheckpointName, train.CurvesName, train.HistoryName} {
		if _, err := os.Stat(filepath.Join(opts.OutDir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Task != data.TaskGender || m.Info.Config.Input != 48 || m.NumParams() == 0 {
		t.Errorf("saved model info %+v", m.Info)
	}
}

// weights returns every tensor of a checkpoint by name.
func weights(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	meta, ts, err := modelfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Kind != "checkpoint" {
		t.Fatalf("%s is a %q", path, meta.Kind)
	}
	out := map[string][]float32{}
	for _, x := range ts {
		if x.F32 != nil {
			out[x.Name] = x.F32
		}
	}
	return out
}

func sameWeights(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		for k := range a {
			if _, ok := b[k]; !ok {
				t.Log("only in first:", k)
			}
		}
		for k := range b {
			if _, ok := a[k]; !ok {
				t.Log("only in second:", k)
			}
		}
		t.Fatalf("checkpoints hold %d and %d float tensors", len(a), len(b))
	}
	for k, va := range a {
		vb := b[k]
		if len(va) != len(vb) {
			t.Fatalf("%s: %d vs %d values", k, len(va), len(vb))
		}
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Fatalf("%s[%d]: %g (uninterrupted) vs %g (resumed): resumption is not bit-exact", k, i, va[i], vb[i])
			}
		}
	}
}

func TestResumeIsBitExact(t *testing.T) {
	ex := examples(t, 24, 48, prep.DefaultAugment())
	be := backend(t)
	full := options(t.TempDir(), 2, 8)
	if _, err := train.Run(context.Background(), be, full, ex, ex); err != nil {
		t.Fatal(err)
	}
	parts := options(t.TempDir(), 2, 8)
	parts.StopAfterSteps = 2 // stop mid-epoch (3 steps per epoch)
	for i := 0; i < 4; i++ {
		res, err := train.Run(context.Background(), be, parts, ex, ex)
		if err != nil {
			t.Fatal(err)
		}
		if res.ModelPath != "" {
			break
		}
	}
	sameWeights(t, weights(t, filepath.Join(full.OutDir, train.CheckpointName)), weights(t, filepath.Join(parts.OutDir, train.CheckpointName)))
}

// TestSurvivesSIGKILL kills a training process with SIGKILL in the middle
// of an epoch, restarts it, and checks that it resumes from the last
// checkpoint and ends with the same weights as an uninterrupted run.
func TestSurvivesSIGKILL(t *testing.T) {
	if dir := os.Getenv("AGEGENDER_TRAIN_CHILD"); dir != "" {
		ex := examples(t, 24, 48, prep.DefaultAugment())
		if _, err := train.Run(context.Background(), backend(t), options(dir, 4, 8), ex, ex); err != nil {
			t.Fatal(err)
		}
		return
	}
	utkDir(t)
	if testing.Short() {
		t.Skip("spawns training processes; skipped in -short mode")
	}
	run := func(dir string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesSIGKILL$", "-test.count=1")
		cmd.Env = append(os.Environ(), "AGEGENDER_TRAIN_CHILD="+dir)
		return cmd
	}
	full := t.TempDir()
	if out, err := run(full).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	killed := t.TempDir()
	cmd := run(killed)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(killed, train.CheckpointName)
	deadline := time.Now().Add(2 * time.Minute)
	var step int64
	for time.Now().Before(deadline) {
		if meta, _, err := modelfile.Read(ckpt); err == nil {
			var st struct {
				Step int64 `json:"step"`
			}
			json.Unmarshal(meta.Payload, &st)
			if st.Step >= 4 {
				step = st.Step
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if step == 0 {
		t.Fatal("no checkpoint appeared before the deadline")
	}
	// Whatever the kill interrupted, the checkpoint on disk must be whole.
	if _, _, err := modelfile.Read(ckpt); err != nil {
		t.Fatalf("checkpoint corrupt after SIGKILL: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(killed, ".*tmp*"))
	t.Logf("killed at step ≥ %d; leftover temp files: %v", step, left)
	if out, err := run(killed).CombinedOutput(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	sameWeights(t, weights(t, filepath.Join(full, train.CheckpointName)), weights(t, ckpt))
}

// TestDivergenceIsReported: a run whose loss becomes NaN stops with an
// error that says what happened and what to do, keeping its last checkpoint.
func TestDivergenceIsReported(t *testing.T) {
	ex := examples(t, 16, 48, prep.Augment{})
	opts := options(t.TempDir(), 6, 8)
	opts.Optimizer, opts.LR = train.SGD, 1e12
	_, err := train.Run(context.Background(), backend(t), opts, ex, ex)
	if err == nil {
		t.Fatal("SGD with a learning rate of 1e12 trained without complaint")
	}
	if !strings.Contains(err.Error(), "diverged") || !strings.Contains(err.Error(), "learning rate") {
		t.Errorf("error %q does not say the run diverged and what to change", err)
	}
}

// TestCosineRun trains two epochs with the cosine schedule and checks that
// the schedule is recorded in the model file and that a run with other
// schedule settings refuses the checkpoint.
func TestCosineRun(t *testing.T) {
	ex := examples(t, 16, 48, prep.Augment{})
	opts := options(t.TempDir(), 2, 8)
	opts.Schedule, opts.Warmup = train.CosineLR, 1
	res, err := train.Run(context.Background(), backend(t), opts, ex, ex)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Info.Training), `"schedule":"cosine"`) {
		t.Errorf("training record %s does not name the schedule", m.Info.Training)
	}
	// 2 epochs of 2 steps: Adam's learning rate at the last step (3) is
	// LR·(1+cos(π·2/3))/2 = LR/4, and the checkpoint keeps it.
	lr, ok := weights(t, filepath.Join(opts.OutDir, train.CheckpointName))["/optimizers/learning_rate"]
	if !ok || len(lr) != 1 || math.Abs(float64(lr[0])-opts.LR/4) > 1e-9 {
		t.Errorf("learning rate at the last step %v, want %g", lr, opts.LR/4)
	}
	opts.Warmup = 2
	if _, err := train.Run(context.Background(), backend(t), opts, ex, ex); err == nil || !strings.Contains(err.Error(), "other options") {
		t.Errorf("resuming with another warm-up: error %v", err)
	}
	opts.Warmup, opts.Dataset = 1, "other data"
	if _, err := train.Run(context.Background(), backend(t), opts, ex, ex); err == nil || !strings.Contains(err.Error(), "other options") {
		t.Errorf("resuming on other data (another --limit, fold or --augment): error %v", err)
	}
}
