// agegender patch: tests for FromFloat32's subnormals and rounding.

package float16

import (
	"math"
	"testing"
)

func TestFromFloat32Subnormals(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504},
		{0x0001, 5.960464477539063e-08}, // smallest subnormal, 2^-24
		{0x0200, 3.0517578125e-05},      // 2^-15
		{0x03ff, 6.097555160522461e-05}, // largest subnormal
		{0x0400, 6.103515625e-05},       // smallest normal, 2^-14
		{0x3555, 0.333251953125},
		{0x8001, -5.960464477539063e-08},
	} {
		if got := FromFloat32(c.f); uint16(got) != c.h {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", c.f, uint16(got), c.h)
		}
		if got := Float16(c.h).Float32(); got != c.f {
			t.Errorf("Float16(%#04x).Float32() = %g, want %g", c.h, got, c.f)
		}
	}
	// Every half value survives a round trip through float32, and the
	// midpoint between two neighbours rounds to the even one.
	for h := uint16(0); h < 0x7c00; h++ {
		f := Float16(h).Float32()
		if got := FromFloat32(f); uint16(got) != h {
			t.Fatalf("FromFloat32(Float16(%#04x).Float32()) = %#04x", h, uint16(got))
		}
		next := Float16(h + 1).Float32()
		mid := float32((float64(f) + float64(next)) / 2)
		want := h
		if h&1 == 1 {
			want = h + 1
		}
		if got := FromFloat32(mid); uint16(got) != want {
			t.Fatalf("FromFloat32(%g), halfway between %#04x and %#04x = %#04x, want %#04x", mid, h, h+1, uint16(got), want)
		}
	}
	if !math.IsInf(float64(FromFloat32(1e6).Float32()), 1) || !math.IsNaN(float64(FromFloat32(float32(math.NaN())).Float32())) {
		t.Error("Inf/NaN not preserved")
	}
}
