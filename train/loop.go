package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/agegender/agegender/internal/atomicfile"
	"github.com/agegender/agegender/internal/progress"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// run is one training run in progress.
type run struct {
	opts             Options
	store            *mlx.Store
	g                *graphs
	st               state
	trainSet, valSet Examples
	perEpoch, total  int64 // steps
	bar              *progress.Bar
}

// loop trains from the state's step to the end, or until ctx is done or
// opts.StopAfterSteps steps are taken, and checkpoints where it stops. It
// reports whether the run is complete.
func (r *run) loop(ctx context.Context) (done bool, err error) {
	prodCtx, stop := context.WithCancel(ctx)
	defer stop()
	sh := shapeOf(r.trainSet, r.opts)
	batches := produce(prodCtx, r.trainSet, r.opts, r.st.Step, r.perEpoch, r.total)
	if r.st.Step < r.total {
		r.newBar()
	}
	stepsHere := 0
	epochStart := time.Now()
	ckpt := filepath.Join(r.opts.OutDir, CheckpointName)
	for b := range batches {
		if ctx.Err() != nil {
			break
		}
		if b.step%r.perEpoch == 0 {
			if err := r.g.trainer.ResetTrainMetrics(); err != nil {
				return false, err
			}
			r.st.EpochLoss, r.st.EpochN, r.st.EpochSecs = 0, 0, 0
			epochStart = time.Now()
		}
		m, err := r.g.step(tensors.FromFlatDataAndDimensions(b.images, append([]int{r.opts.Batch}, sh.dims...)...),
			tensors.FromFlatDataAndDimensions(b.labels, r.opts.Batch, sh.nLabels))
		if err != nil {
			return false, fmt.Errorf("train: step %d: %w", b.step, err)
		}
		if math.IsNaN(m.loss) || math.IsInf(m.loss, 0) {
			return false, fmt.Errorf("train: the loss became %v at step %d: training diverged; lower the learning rate (--lr) or use another optimiser (the last good checkpoint is kept in %s)",
				m.loss, b.step, r.opts.OutDir)
		}
		r.st.Step = b.step + 1
		r.st.EpochLoss += m.loss
		r.st.EpochN++
		stepsHere++
		if r.bar != nil {
			r.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.3f acc %.3f", b.step/r.perEpoch+1, r.opts.Epochs, r.st.EpochLoss/float64(r.st.EpochN), m.acc))
			r.bar.Add(1)
		}
		endOfEpoch := r.st.Step%r.perEpoch == 0 || r.st.Step == r.total
		if endOfEpoch {
			if err := r.endEpoch(r.st.EpochSecs+time.Since(epochStart).Seconds(), m.acc); err != nil {
				return false, err
			}
		} else if r.st.Step%int64(r.opts.CheckpointEvery) == 0 {
			r.st.EpochSecs += time.Since(epochStart).Seconds()
			epochStart = time.Now()
		}
		if endOfEpoch || r.st.Step%int64(r.opts.CheckpointEvery) == 0 {
			if err := saveCheckpoint(ckpt, r.store, r.st); err != nil {
				return false, err
			}
		}
		if r.opts.StopAfterSteps > 0 && stepsHere >= r.opts.StopAfterSteps {
			stop()
			break
		}
	}
	if r.st.Step >= r.total {
		return true, nil
	}
	// Interrupted: keep what was done.
	r.st.EpochSecs += time.Since(epochStart).Seconds()
	if err := saveCheckpoint(ckpt, r.store, r.st); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("train: interrupted at step %d of %d; run again to resume: %w", r.st.Step, r.total, err)
	}
	return false, nil
}

// endEpoch validates, records the epoch that took secs seconds and ended
// with training accuracy acc, keeps the model if it is the best so far,
// and writes the curves and history.
func (r *run) endEpoch(secs, acc float64) error {
	valAcc, err := validate(r.g.eval, r.valSet, r.opts)
	if err != nil {
		return err
	}
	st := &r.st
	ep := Epoch{Epoch: int((st.Step + r.perEpoch - 1) / r.perEpoch), Step: st.Step, TrainLoss: st.EpochLoss / float64(st.EpochN),
		TrainAcc: acc, ValAcc: valAcc, Seconds: secs, ImgPerSec: float64(st.EpochN*r.opts.Batch) / secs}
	st.History = append(st.History, ep)
	r.bar.Finish()
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "epoch %d: loss %.4f train acc %.4f val acc %.4f (%.0f img/s)\n",
			ep.Epoch, ep.TrainLoss, ep.TrainAcc, ep.ValAcc, ep.ImgPerSec)
	}
	if valAcc > st.BestVal || st.BestVal == 0 {
		st.BestVal = valAcc
		if err := saveModel(filepath.Join(r.opts.OutDir, ModelName), r.store, *st); err != nil {
			return err
		}
	}
	if err := saveCurves(filepath.Join(r.opts.OutDir, CurvesName), st.History); err != nil {
		return err
	}
	if hj, err := json.MarshalIndent(st.History, "", "  "); err == nil {
		if err := atomicfile.WriteFile(filepath.Join(r.opts.OutDir, HistoryName), hj, 0o644); err != nil {
			return err
		}
	}
	if st.Step < r.total {
		r.newBar()
	}
	return nil
}

// newBar starts the progress bar of the current epoch (none without
// opts.Progress).
func (r *run) newBar() {
	if r.opts.Progress == nil {
		return
	}
	// The last epoch of a run cut short by MaxSteps is partial.
	r.bar = progress.New(r.opts.Progress, int(min(r.perEpoch, r.total-r.st.Step/r.perEpoch*r.perEpoch)),
		fmt.Sprintf("epoch %d/%d", r.st.Step/r.perEpoch+1, r.opts.Epochs), "batch")
	r.bar.Start(int(r.st.Step % r.perEpoch))
}
