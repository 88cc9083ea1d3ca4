// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

// agegender patch: a kernel for tall, narrow float32 products
// [M, K]×[K, N] with N ≤ 128: the 1×1 (pointwise) convolutions of
// MobileNet-style networks, such as BlazeFace's [16384, 24]×[24, 24].

import (
	"runtime"
	"simd/archsimd"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/compute/internal/gobackend"
)

// Limits of the narrow kernel: output width and contracted size, and the
// least number of output rows for which it pays.
const (
	narrowMaxN    = 128
	narrowMaxK    = 1024
	narrowMinRows = 64
	// narrowChunkRows output rows are one work item of a parallel product.
	narrowChunkRows = 64
	// narrowSerialFlops: below this many multiply-adds one goroutine does
	// all the work (a fan-out costs more).
	narrowSerialFlops = 400_000
)

// avx512UseNarrow reports whether avx512NarrowFloat32 computes this
// non-transposed product.
func avx512UseNarrow(batchSize, lhsCrossSize, rhsCrossSize, contractingSize int) bool {
	return rhsCrossSize <= narrowMaxN && contractingSize <= narrowMaxK && lhsCrossSize >= narrowMinRows &&
		batchSize*contractingSize*((rhsCrossSize+15)&^15) <= 1<<16
}

// narrowPacks holds the zero-padded copies of the right-hand operand.
var narrowPacks = sync.Pool{New: func() any { return new([]float32) }}

// avx512NarrowFloat32 computes a non-transposed product lhs [B, M, K] ×
// rhs [B, K, N] = output [B, M, N] that avx512UseNarrow accepted. The
// right-hand operand is copied with its rows padded to a multiple of 16
// values, so that every load of it is a whole register; two output rows
// are computed together, their partial sums in registers (up to 3
// registers wide, 48 output columns, at a time) from the first contracted
// value to the last, and stored once (masked past column N). Chunks of 64
// rows go to the backend's workers.
//
// The large kernel packs both operands, copies its packed output back, and
// spills its 4-row tiles: [16384, 24]×[24, 24] took 0.67 ms of wall time
// there inside BlazeFace's back model (2 cores), 0.42 here.
func avx512NarrowFloat32(backend *gobackend.Backend, lhs, rhs []float32,
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int, output []float32) {
	m, n, k := lhsCrossSize, rhsCrossSize, contractingSize
	np := (n + 15) &^ 15
	pp := narrowPacks.Get().(*[]float32)
	defer narrowPacks.Put(pp)
	if cap(*pp) < batchSize*k*np {
		*pp = make([]float32, batchSize*k*np)
	}
	packed := (*pp)[:batchSize*k*np]
	for b := range batchSize {
		for kk := range k {
			dst := packed[(b*k+kk)*np : (b*k+kk+1)*np]
			copy(dst, rhs[(b*k+kk)*n:(b*k+kk+1)*n])
			clear(dst[n:])
		}
	}
	chunksPerBatch := (m + narrowChunkRows - 1) / narrowChunkRows
	total := batchSize * chunksPerBatch
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= total {
				return
			}
			b, c := i/chunksPerBatch, i%chunksPerBatch
			r0 := c * narrowChunkRows
			r1 := min(m, r0+narrowChunkRows)
			narrowRowsFloat32(lhs[(b*m+r0)*k:(b*m+r1)*k], packed[b*k*np:(b+1)*k*np],
				output[(b*m+r0)*n:(b*m+r1)*n], r1-r0, n, k)
		}
	}
	if total == 1 || backend == nil || backend.Workers == nil || batchSize*m*n*k < narrowSerialFlops {
		work()
		return
	}
	backend.Workers.Saturate(work)
}

// narrowRowsFloat32 computes rows output rows of width n from lhs [rows,
// k] and the padded rhs [k, roundup16(n)]: two rows at a time, 16, 32 or
// 48 columns at a time. (The Go compiler gives SIMD values 15 registers;
// four rows, as the large kernel does, spill and ran at half the speed.)
func narrowRowsFloat32(lhs, rhs, out []float32, rows, n, k int) {
	np := (n + 15) &^ 15
	_ = lhs[rows*k-1]
	_ = rhs[k*np-1]
	_ = out[rows*n-1]
	all := archsimd.Mask32x16FromBits(0xffff)
	tail := all
	if r := n & 15; r != 0 {
		tail = archsimd.Mask32x16FromBits(uint16(0xffff >> (16 - r)))
	}
	p := narrowArgs{
		lhs: unsafe.Pointer(unsafe.SliceData(lhs)),
		rhs: unsafe.Pointer(unsafe.SliceData(rhs)),
		out: unsafe.Pointer(unsafe.SliceData(out)),
		ks:  uintptr(k) * 4, ws: uintptr(np) * 4, os: uintptr(n) * 4, k: k,
	}
	for c := 0; c < np; {
		m0, m1, m2 := narrowMask(c, n, all, tail), narrowMask(c+16, n, all, tail), narrowMask(c+32, n, all, tail)
		switch left := (np - c) / 16; left {
		case 1:
			for r := 0; r < rows; r += 2 {
				narrow2x1(&p, r, c, r+1 < rows, m0)
			}
			c += 16
		case 2, 4:
			for r := 0; r < rows; r += 2 {
				narrow2x2(&p, r, c, r+1 < rows, m0, m1)
			}
			c += 32
		default:
			for r := 0; r < rows; r += 2 {
				narrow2x3(&p, r, c, r+1 < rows, m0, m1, m2)
			}
			c += 48
		}
	}
	runtime.KeepAlive(lhs)
	runtime.KeepAlive(rhs)
	runtime.KeepAlive(out)
}

// narrowArgs are the operands of narrowRowsFloat32 as addresses, and
// their row strides in bytes (k ≥ 1). The kernels step addresses only to
// elements they read or write: an address past the end of an operand is
// invalid in Go even unread (the collector may find it; -race and
// -d=checkptr stop on it), so loops advance before all but the first
// iteration, not after the last.
type narrowArgs struct {
	lhs, rhs, out unsafe.Pointer
	ks, ws, os    uintptr
	k             int
}

// narrowMask returns the store mask of the output register starting at
// column c: all lanes, or tail for the one that crosses n.
func narrowMask(c, n int, all, tail archsimd.Mask32x16) archsimd.Mask32x16 {
	if c+16 > n {
		return tail
	}
	return all
}

func narrowLoad(p unsafe.Pointer) archsimd.Float32x16 {
	return archsimd.LoadFloat32x16((*[16]float32)(p))
}

func narrowBroadcast(p unsafe.Pointer) archsimd.Float32x16 {
	return archsimd.BroadcastFloat32x16(*(*float32)(p))
}

func narrowStore(v archsimd.Float32x16, p unsafe.Pointer, m archsimd.Mask32x16) {
	v.StoreMasked((*[16]float32)(p), m)
}

// narrow2x1 computes output columns [c, c+16) of row r, and of row r+1 if
// two.
func narrow2x1(p *narrowArgs, r, c int, two bool, m0 archsimd.Mask32x16) {
	l0 := unsafe.Add(p.lhs, uintptr(r)*p.ks)
	l1 := l0
	if two {
		l1 = unsafe.Add(l1, p.ks)
	}
	w, ws := unsafe.Add(p.rhs, c*4), p.ws
	a0, a1 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	for i := 0; ; {
		w0 := narrowLoad(w)
		a0 = narrowBroadcast(l0).MulAdd(w0, a0)
		a1 = narrowBroadcast(l1).MulAdd(w0, a1)
		if i++; i == p.k {
			break // no address past the operands is formed (see narrowArgs)
		}
		l0 = unsafe.Add(l0, 4)
		l1 = unsafe.Add(l1, 4)
		w = unsafe.Add(w, ws)
	}
	o := unsafe.Add(p.out, uintptr(r)*p.os+uintptr(c)*4)
	narrowStore(a0, o, m0)
	if two {
		narrowStore(a1, unsafe.Add(o, p.os), m0)
	}
}

// narrow2x2 computes output columns [c, c+32) of row r, and of row r+1 if
// two (c+16 < n).
func narrow2x2(p *narrowArgs, r, c int, two bool, m0, m1 archsimd.Mask32x16) {
	l0 := unsafe.Add(p.lhs, uintptr(r)*p.ks)
	l1 := l0
	if two {
		l1 = unsafe.Add(l1, p.ks)
	}
	w, ws := unsafe.Add(p.rhs, c*4), p.ws
	a00, a01 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	a10, a11 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	for i := 0; ; {
		w0, w1 := narrowLoad(w), narrowLoad(unsafe.Add(w, 64))
		x := narrowBroadcast(l0)
		a00, a01 = x.MulAdd(w0, a00), x.MulAdd(w1, a01)
		x = narrowBroadcast(l1)
		a10, a11 = x.MulAdd(w0, a10), x.MulAdd(w1, a11)
		if i++; i == p.k {
			break
		}
		l0 = unsafe.Add(l0, 4)
		l1 = unsafe.Add(l1, 4)
		w = unsafe.Add(w, ws)
	}
	o := unsafe.Add(p.out, uintptr(r)*p.os+uintptr(c)*4)
	narrowStore(a00, o, m0)
	narrowStore(a01, unsafe.Add(o, 64), m1)
	if two {
		narrowStore(a10, unsafe.Add(o, p.os), m0)
		narrowStore(a11, unsafe.Add(o, p.os+64), m1)
	}
}

// narrow2x3 computes output columns [c, c+48) of row r, and of row r+1 if
// two (c+32 < n).
func narrow2x3(p *narrowArgs, r, c int, two bool, m0, m1, m2 archsimd.Mask32x16) {
	l0 := unsafe.Add(p.lhs, uintptr(r)*p.ks)
	l1 := l0
	if two {
		l1 = unsafe.Add(l1, p.ks)
	}
	w, ws := unsafe.Add(p.rhs, c*4), p.ws
	a00, a01, a02 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	a10, a11, a12 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	for i := 0; ; {
		w0, w1, w2 := narrowLoad(w), narrowLoad(unsafe.Add(w, 64)), narrowLoad(unsafe.Add(w, 128))
		x := narrowBroadcast(l0)
		a00, a01, a02 = x.MulAdd(w0, a00), x.MulAdd(w1, a01), x.MulAdd(w2, a02)
		x = narrowBroadcast(l1)
		a10, a11, a12 = x.MulAdd(w0, a10), x.MulAdd(w1, a11), x.MulAdd(w2, a12)
		if i++; i == p.k {
			break
		}
		l0 = unsafe.Add(l0, 4)
		l1 = unsafe.Add(l1, 4)
		w = unsafe.Add(w, ws)
	}
	o := unsafe.Add(p.out, uintptr(r)*p.os+uintptr(c)*4)
	narrowStore(a00, o, m0)
	narrowStore(a01, unsafe.Add(o, 64), m1)
	narrowStore(a02, unsafe.Add(o, 128), m2)
	if two {
		o = unsafe.Add(o, p.os)
		narrowStore(a10, o, m0)
		narrowStore(a11, unsafe.Add(o, 64), m1)
		narrowStore(a12, unsafe.Add(o, 128), m2)
	}
}
