// agegender patch: tests for the two hangs fixed in workerspool.go.

package workerspool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hangTimeout bounds each test: the unpatched pool never returns, the
// patched one returns in microseconds.
const hangTimeout = 5 * time.Second

// TestSaturateFromFullPool reproduces the pure-Go backend's hang (seen as
// goroutines parked in Pool.WaitToStart and Pool.Saturate): the graph
// executor runs nodes with WaitToStart, and a node that multiplies matrices
// calls Saturate from inside its worker. With parallelism 2 and two such
// nodes running, both slots are held by workers that wait in Saturate for a
// free slot, while the executor waits in WaitToStart for one too: nobody
// ever frees a slot. Saturate must make progress on its caller's goroutine.
func TestSaturateFromFullPool(t *testing.T) {
	pool := New()
	pool.SetMaxParallelism(2)

	var inside, done sync.WaitGroup
	inside.Add(2)
	done.Add(2)
	for range 2 {
		pool.WaitToStart(func() {
			defer done.Done()
			// Both workers hold their slot before either calls Saturate,
			// so the pool is full when Saturate starts (deterministic).
			inside.Done()
			inside.Wait()
			pool.Saturate(func() {})
		})
	}
	// The executor asks for a third slot, as it does for the next ready node.
	third := make(chan struct{})
	go pool.WaitToStart(func() { close(third) })

	waitOrFail(t, func() { done.Wait(); <-third },
		"Saturate called from the workers of a full pool never returned (hold-and-wait deadlock)")
}

// TestExecutorLikeLoad drives the pool as the graph executor and the
// matrix multiplications do — nodes started with WaitToStart, each splitting
// its work over Saturate — at several parallelisms, and requires every
// round to finish and every piece of work to be done exactly once.
func TestExecutorLikeLoad(t *testing.T) {
	for _, parallelism := range []int{-1, 1, 2, 3, 8} {
		pool := New()
		pool.SetMaxParallelism(parallelism)
		waitOrFail(t, func() {
			for range 200 {
				var nodes sync.WaitGroup
				var pieces atomic.Int64
				for range 6 {
					nodes.Add(1)
					pool.WaitToStart(func() {
						defer nodes.Done()
						work := make(chan int, 16)
						for i := range 16 {
							work <- i
						}
						close(work)
						pool.Saturate(func() {
							for range work {
								pieces.Add(1)
							}
						})
					})
				}
				nodes.Wait()
				if got := pieces.Load(); got != 6*16 {
					t.Errorf("parallelism %d: %d pieces of work done, want %d", parallelism, got, 6*16)
					return
				}
			}
		}, fmt.Sprintf("parallelism %d: executor-like load did not finish", parallelism))
	}
}

// waitOrFail runs wait and fails the test if it has not returned within
// hangTimeout. The goroutine of a hung wait is leaked; the test binary
// exits anyway.
func waitOrFail(t *testing.T, wait func(), msg string) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(hangTimeout):
		t.Fatal(msg)
	}
}
