package predict

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/model"
)

// ErrClosed is returned by a Runner's calls after Close.
var ErrClosed = errors.New("predict: runner is closed")

// BatchWait is how long a Runner waits for more images to fill a batch
// once it holds some. It is short against the cost of a network run, so a
// lone caller hardly notices it, while concurrent callers share batches.
const BatchWait = 2 * time.Millisecond

// Runner runs one model for concurrent callers, gathering their images
// into shared batches of up to maxBatch images (the package comment says
// how it fits with the rest). It is safe for concurrent use; call Close
// when done.
type Runner struct {
	p        *model.Predictor
	cfg      prep.Spec
	mode     Mode
	maxBatch int

	reqs      chan *request
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// request is one caller's prepared images waiting for the network.
type request struct {
	ctx   context.Context
	in    []float32 // network inputs, cropsPer of them per image
	n     int       // network inputs
	probs [][]float32
	err   error
	done  chan struct{}
}

// NewRunner starts a Runner for p that crops images as mode says and runs
// batches of up to maxBatch images (at least 1). A single call with more
// images runs as one larger batch: calls are never split.
func NewRunner(p *model.Predictor, mode Mode, maxBatch int) *Runner {
	r := &Runner{
		p: p, cfg: PrepConfig(p.Info), mode: mode, maxBatch: max(1, maxBatch),
		reqs: make(chan *request), closing: make(chan struct{}), done: make(chan struct{}),
	}
	go r.batcher()
	return r
}

// Warm compiles the network for a call with one image (see
// model.Predictor.Warm), so that the first call does not wait for it.
func (r *Runner) Warm() error { return r.p.Warm(cropsPer(r.cfg, r.mode)) }

// Predictor returns the model the Runner runs.
func (r *Runner) Predictor() *model.Predictor { return r.p }

// Probs returns class probabilities for each image in pix (each in the
// Resized format). The crops are prepared in the caller's goroutine; the
// network runs them in a batch shared with concurrent callers. A ctx that
// ends while the images wait for their batch takes them out of it, and
// Probs returns ctx.Err().
func (r *Runner) Probs(ctx context.Context, pix [][]uint8) ([][]float32, error) {
	if len(pix) == 0 {
		return nil, nil
	}
	in, err := prepare(r.cfg, pix, r.mode)
	if err != nil {
		return nil, err
	}
	crops := cropsPer(r.cfg, r.mode)
	req := &request{ctx: ctx, in: in, n: len(pix) * crops, done: make(chan struct{})}
	select {
	case r.reqs <- req:
	case <-r.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if req.err != nil {
		return nil, req.err
	}
	return average(req.probs, crops), nil
}

// Close stops the batcher once the batch in progress is done; later calls
// return ErrClosed. Close is idempotent.
func (r *Runner) Close() {
	r.closeOnce.Do(func() { close(r.closing) })
	<-r.done
}

// batcher gathers requests into batches and runs them, one at a time.
func (r *Runner) batcher() {
	defer close(r.done)
	per := cropsPer(r.cfg, r.mode)
	for {
		var batch []*request
		select {
		case req := <-r.reqs:
			batch = append(batch, req)
		case <-r.closing:
			return
		}
		n := batch[0].n / per
		timer := time.NewTimer(BatchWait)
	gather:
		for n < r.maxBatch {
			select {
			case req := <-r.reqs:
				batch = append(batch, req)
				n += req.n / per
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		r.run(batch)
	}
}

// run runs the network on the requests of a batch whose callers still
// wait, and wakes them.
func (r *Runner) run(batch []*request) {
	live := batch[:0:0]
	for _, req := range batch {
		if req.err = req.ctx.Err(); req.err == nil {
			live = append(live, req)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			for _, req := range live {
				req.err = fmt.Errorf("predict: inference failed: %v", p)
			}
		}
		for _, req := range batch {
			close(req.done)
		}
	}()
	if len(live) == 0 {
		return
	}
	in, n := live[0].in, live[0].n
	if len(live) > 1 {
		in = make([]float32, 0, len(in)*len(live))
		n = 0
		for _, req := range live {
			in = append(in, req.in...)
			n += req.n
		}
	}
	all, err := r.p.Probs(in, n)
	for _, req := range live {
		if err != nil {
			req.err = err
			continue
		}
		req.probs, all = all[:req.n], all[req.n:]
	}
}
