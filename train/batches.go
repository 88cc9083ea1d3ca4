package train

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/agegender/agegender/model"
)

// batch is one training step's input: images [Batch, dims...] and labels
// [Batch, nLabels], flat.
type batch struct {
	step   int64
	images []float32
	labels []int32
}

// batchShape is the shape of one example (dims, per floats) and the
// number of labels of each.
type batchShape struct {
	dims         []int
	per, nLabels int
}

func shapeOf(set Examples, opts Options) batchShape {
	s := batchShape{dims: exampleDims(set, opts), per: 1, nLabels: 1}
	for _, d := range s.dims {
		s.per *= d
	}
	if opts.Model.Heads == model.HeadsGenderAge {
		s.nLabels = 2
	}
	return s
}

// produce sends the batches of steps from..total-1 of set, made by
// opts.Workers goroutines a batch ahead of the trainer, until ctx is
// done. Each batch depends only on (Model.Seed, step): the epoch's
// shuffle is seeded by the epoch, each example's augmentation by the step
// and its place in the batch, so a resumed run sees the same batches.
func produce(ctx context.Context, set Examples, opts Options, from, perEpoch, total int64) <-chan batch {
	ahead := make(chan batch, 2)
	sh := shapeOf(set, opts)
	n := set.Len()
	go func() {
		defer close(ahead)
		var perm []int
		permEpoch := int64(-1)
		for s := from; s < total; s++ {
			if e := s / perEpoch; e != permEpoch {
				perm = rand.New(rand.NewPCG(uint64(opts.Model.Seed), uint64(e)+1)).Perm(n)
				permEpoch = e
			}
			b := batch{step: s, images: make([]float32, opts.Batch*sh.per), labels: make([]int32, opts.Batch*sh.nLabels)}
			idx := perm[(s%perEpoch)*int64(opts.Batch):]
			next := make(chan int, opts.Batch)
			for j := 0; j < opts.Batch; j++ {
				next <- j
			}
			close(next)
			var wg sync.WaitGroup
			for range opts.Workers {
				wg.Go(func() {
					for j := range next {
						i := idx[j]
						rng := rand.New(rand.NewPCG(uint64(opts.Model.Seed)^0x9e3779b97f4a7c15, uint64(s)*uint64(opts.Batch)+uint64(j)))
						set.Augmented(i, rng, b.images[j*sh.per:(j+1)*sh.per])
						labelsOf(set, i, b.labels[j*sh.nLabels:(j+1)*sh.nLabels])
					}
				})
			}
			wg.Wait()
			select {
			case ahead <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ahead
}
