package modelfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.agm")
	ts := []Tensor{
		{Name: "/net/w", Dims: []int{2, 3}, Store: Float32, F32: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "/net/h", Dims: []int{2}, Store: Float16, F32: []float32{0.5, -2}},
		{Name: "/step", Dims: []int{}, Store: Int64, I64: []int64{7}},
		{Name: "/rng", Dims: []int{3}, Store: Uint64, U64: []uint64{1, 2, 1 << 63}},
	}
	if err := Write(p, Meta{Kind: "checkpoint", Payload: []byte(`{"x":1}`)}, ts); err != nil {
		t.Fatal(err)
	}
	meta, got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Kind != "checkpoint" || string(meta.Payload) != `{"x":1}` || len(got) != 4 {
		t.Fatalf("read back %+v, %d tensors", meta, len(got))
	}
	if got[0].F32[5] != 6 || got[1].F32[1] != -2 || got[2].I64[0] != 7 || got[3].U64[2] != 1<<63 {
		t.Fatalf("values changed: %+v", got)
	}
	data, _ := os.ReadFile(p)
	// Every truncation and every flipped byte is detected.
	for n := 0; n < len(data); n++ {
		if _, _, err := Decode(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err %v, want ErrCorrupt", n, err)
		}
	}
	for i := range data {
		c := append([]byte(nil), data...)
		c[i] ^= 0x40
		if _, _, err := Decode(c); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	// A failed write leaves the previous file intact and no temp files.
	if err := Write(filepath.Join(dir, "m.agm"), Meta{Kind: "model"}, []Tensor{{Name: "", Store: Float32}}); err == nil {
		t.Fatal("a tensor without a name was written")
	}
	if _, _, err := Read(p); err != nil {
		t.Fatalf("previous file damaged by a failed write: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	if _, _, err := Read(filepath.Join(dir, "missing.agm")); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}
