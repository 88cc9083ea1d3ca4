// agegender patch: tests of constant folding and of the share_constants
// option.

package gobackend_test

import (
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// foldGraph builds x + reshape(k)·reshape(s) (k [2, 3], s [3]) on be,
// compiles it and returns the builder and executable.
func foldGraph(t *testing.T, be compute.Backend, k, s []float32) (*gobackend.Builder, compute.Executable) {
	t.Helper()
	builder := be.Builder("fold")
	fn := builder.Main()
	x, err := fn.Parameter("x", shapes.Make(dtypes.Float32, 3, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := fn.Constant(k, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fn.Constant(s, 3)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := fn.Reshape(kc, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := fn.Reshape(sc, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := fn.Mul(kr, sr) // [3, 2] · [3, 1] broadcast by the op
	if err != nil {
		t.Fatal(err)
	}
	y, err := fn.Add(x, ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Return([]compute.Value{y}, nil); err != nil {
		t.Fatal(err)
	}
	exec, err := builder.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return builder.(*gobackend.Builder), exec
}

func runFold(t *testing.T, be compute.Backend, exec compute.Executable, x []float32) []float32 {
	t.Helper()
	in, err := be.BufferFromFlatData(0, x, shapes.Make(dtypes.Float32, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Execute([]compute.Buffer{in}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 6)
	if err := out[0].ToFlatData(got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConstantFolding(t *testing.T) {
	k := []float32{1, 2, 3, 4, 5, 6}
	s := []float32{10, 100, 1000}
	builder, exec := foldGraph(t, backend, k, s)
	x := []float32{0.5, 0.5, 0.5, 0.5, 0.5, 0.5}
	want := []float32{10.5, 20.5, 300.5, 400.5, 5000.5, 6000.5}
	for run := range 2 {
		got := runFold(t, backend, exec, x)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("run %d: got %v, want %v", run, got, want)
			}
		}
	}
	// Both reshapes and the product are constants now; only the sum runs.
	var ops []compute.OpType
	for _, n := range builder.MainFn.Nodes {
		if n.OpType != compute.OpTypeConstant && n.OpType != compute.OpTypeParameter {
			ops = append(ops, n.OpType)
		}
	}
	if len(ops) != 1 || ops[0] != compute.OpTypeAdd {
		t.Errorf("ops left after folding: %v, want [Add]", ops)
	}
	// The folded reshape shares its operand's storage.
	var k23, k32 *gobackend.Buffer
	for _, n := range builder.MainFn.Nodes {
		if n.OpType != compute.OpTypeConstant {
			continue
		}
		switch {
		case n.Shape.Equal(shapes.Make(dtypes.Float32, 2, 3)):
			k23 = n.Data.(*gobackend.Buffer)
		case n.Shape.Equal(shapes.Make(dtypes.Float32, 3, 2)) && k32 == nil:
			k32 = n.Data.(*gobackend.Buffer)
		}
	}
	if k23 == nil || k32 == nil || &k32.Flat.([]float32)[0] != &k23.Flat.([]float32)[0] {
		t.Errorf("the reshaped constant does not share its operand's storage")
	}
	exec.Finalize()
}

// TestConstantFoldingKeepsBroadcasts checks that a broadcast of a small
// constant to a large shape is not materialised at compilation.
func TestConstantFoldingKeepsBroadcasts(t *testing.T) {
	builder := backend.Builder("broadcast")
	fn := builder.Main()
	c, err := fn.Constant([]float32{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	big, err := fn.BroadcastInDim(c, shapes.Make(dtypes.Float32, 256, 256), []int{0})
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Return([]compute.Value{big}, nil); err != nil {
		t.Fatal(err)
	}
	exec, err := builder.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	if op := builder.(*gobackend.Builder).MainFn.Outputs[0].OpType; op != compute.OpTypeBroadcastInDim {
		t.Errorf("output op %s, want BroadcastInDim left unfolded", op)
	}
	out, err := exec.Execute(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 256*256)
	if err := out[0].ToFlatData(got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 1 || got[len(got)-1] != 1 {
		t.Errorf("broadcast gave %v … %v, want 1", got[0], got[len(got)-1])
	}
}

// TestShareConstants checks that with share_constants a constant uses the
// caller's slice (a change to it shows in the next run: the documented
// contract is not to change it), and without it a copy.
func TestShareConstants(t *testing.T) {
	for _, share := range []bool{false, true} {
		config := ""
		if share {
			config = "share_constants"
		}
		be, err := gobackend.New(config)
		if err != nil {
			t.Fatal(err)
		}
		k := []float32{1, 2, 3, 4, 5, 6}
		builder := be.Builder("share")
		fn := builder.Main()
		x, err := fn.Parameter("x", shapes.Make(dtypes.Float32, 3, 2), nil)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := fn.Constant(k, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := fn.Reshape(kc, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		y, err := fn.Add(x, kr)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn.Return([]compute.Value{y}, nil); err != nil {
			t.Fatal(err)
		}
		exec, err := builder.Compile()
		if err != nil {
			t.Fatal(err)
		}
		zeros := make([]float32, 6)
		if got := runFold(t, be, exec, zeros); got[5] != 6 {
			t.Fatalf("share=%v: got %v, want k", share, got)
		}
		k[5] = 60
		want := float32(6)
		if share {
			want = 60
		}
		if got := runFold(t, be, exec, zeros); got[5] != want {
			t.Errorf("share=%v: after changing k[5] the graph gives %v, want %v", share, got[5], want)
		}
		exec.Finalize()
		be.Finalize()
	}
}

func TestShareConstantsOtherTypes(t *testing.T) {
	be, err := gobackend.New("share_constants")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Finalize()
	builder := be.Builder("types")
	fn := builder.Main()
	c, err := fn.Constant([]float64{1, 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	i, err := fn.Constant([]int32{7}, 1)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := fn.Add(i, i)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Return([]compute.Value{c, sum}, nil); err != nil {
		t.Fatal(err)
	}
	exec, err := builder.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Execute(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int32, 1)
	if err := out[1].ToFlatData(got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 14 {
		t.Errorf("7+7 = %d", got[0])
	}
}

// TestLargerFreeBuffer checks that a request whose bucket has no free
// buffer takes a free one from a slightly larger bucket, which then goes
// back to its own pool; small requests and much larger buffers are left.
func TestLargerFreeBuffer(t *testing.T) {
	be, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Finalize()
	b := be.(*gobackend.Backend)
	big := shapes.Make(dtypes.Float32, 256<<10) // 1 MiB
	// sync.Pool may drop an item at a garbage collection: a few tries.
	for try := 0; ; try++ {
		buf, err := b.GetBuffer(big)
		if err != nil {
			t.Fatal(err)
		}
		b.PutBuffer(buf)
		small, err := b.GetBuffer(shapes.Make(dtypes.Float32, 100<<10)) // 400 KiB: 2.5 buckets down
		if err != nil {
			t.Fatal(err)
		}
		if len(small.RawBytes) == 1<<20 {
			if got := len(small.Flat.([]float32)); got != 100<<10 {
				t.Errorf("reused buffer has %d values, want %d", got, 100<<10)
			}
			b.PutBuffer(small)
			again, err := b.GetBuffer(big)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.RawBytes) != 1<<20 {
				t.Errorf("after Put, a 1 MiB request got %d bytes", len(again.RawBytes))
			}
			break
		}
		if try == 5 {
			t.Fatalf("a 400 KiB request with a free 1 MiB buffer got %d fresh bytes", len(small.RawBytes))
		}
	}
	tiny, err := b.GetBuffer(shapes.Make(dtypes.Float32, 4<<10)) // 16 KiB: below the threshold
	if err != nil {
		t.Fatal(err)
	}
	if len(tiny.RawBytes) != 16<<10 {
		t.Errorf("a 16 KiB request got a %d-byte buffer", len(tiny.RawBytes))
	}
	huge, err := b.GetBuffer(shapes.Make(dtypes.Float32, 4<<20)) // 16 MiB, free
	if err != nil {
		t.Fatal(err)
	}
	b.PutBuffer(huge)
	mid, err := b.GetBuffer(big) // 1 MiB: 16 MiB is more than 4 buckets up
	if err != nil {
		t.Fatal(err)
	}
	if len(mid.RawBytes) == 16<<20 {
		t.Error("a 1 MiB request took a free 16 MiB buffer")
	}
}
