// Package modelfile reads and writes agegender's model and checkpoint files.
//
// One format serves both: a trained model (weights only, usually stored as
// float16 to halve its size) and a training checkpoint (every variable of the
// run: weights, optimiser moments, step counter and random-generator state,
// in full precision, so training resumes bit-exactly).
//
// Layout (little-endian):
//
//	"AGMODEL1"                         8-byte magic
//	uint32 n, n bytes                  metadata, JSON (see Meta)
//	uint32 count                       number of tensors
//	count × tensor:
//	    uint16 n, n bytes              name (the GoMLX variable path)
//	    uint8 dtype                    see DType
//	    uint8 rank, rank × uint32      dimensions
//	    data                           elements × size(dtype) bytes
//	uint32 crc                         CRC-32C of every byte before it
//
// Files are written atomically (temporary file in the same directory, fsync,
// rename, fsync of the directory): a reader sees the old file or the new one,
// never a torn one. Read checks the size, the checksum and every length
// before allocating, so a truncated, corrupt or hostile file gives an error
// that names the file and the problem, never a panic or a huge allocation.
package modelfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sync"

	"github.com/agegender/agegender/internal/atomicfile"
	"github.com/gomlx/compute/dtypes/float16"
)

const magic = "AGMODEL1"

// Limits on what Read accepts.
const (
	MaxFileSize  = 2 << 30 // 2 GiB
	maxMetaSize  = 4 << 20
	maxTensors   = 100_000
	maxRank      = 8
	maxNameBytes = 1024
)

// DType is how a tensor's elements are stored.
type DType uint8

const (
	Float32 DType = 1 // 4 bytes, IEEE 754
	Float16 DType = 2 // 2 bytes, IEEE 754 half; read back as float32
	Int64   DType = 3
	Uint64  DType = 4
	Int32   DType = 5
)

func (d DType) size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float16:
		return 2
	case Int64, Uint64:
		return 8
	}
	return 0
}

// Tensor is one named array. Exactly one of the data slices is set, matching
// DType (Float16 tensors are held as F32 in memory).
type Tensor struct {
	Name string
	Dims []int
	// Store is the on-disk dtype. Float16 rounds F32 data when written.
	Store DType
	F32   []float32
	I64   []int64
	U64   []uint64
	I32   []int32
}

// Elements is the product of the dimensions.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

func (t Tensor) dataLen() int {
	switch t.Store {
	case Float32, Float16:
		return len(t.F32)
	case Int64:
		return len(t.I64)
	case Uint64:
		return len(t.U64)
	case Int32:
		return len(t.I32)
	}
	return -1
}

// Meta is the JSON header: everything needed to use the weights.
// Unknown fields are preserved in Extra by callers that need them.
type Meta struct {
	// Kind is "model" (weights for inference) or "checkpoint" (a training state).
	Kind string `json:"kind"`
	// Payload is the caller's description (network config, task, preprocessing,
	// training options and history) as raw JSON.
	Payload json.RawMessage `json:"payload"`
}

// Write stores meta and tensors at path atomically (internal/atomicfile:
// readers see the old file or the new one, never a mix; mode 0644).
func Write(path string, meta Meta, ts []Tensor) error {
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return Encode(w, meta, ts) }); err != nil {
		return fmt.Errorf("modelfile: %w", err)
	}
	return nil
}

// Encode writes the format to w.
func Encode(w io.Writer, meta Meta, ts []Tensor) error {
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString(magic)
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, uint32(len(mj))))
	b.Write(mj)
	b.Write(le.AppendUint32(nil, uint32(len(ts))))
	for _, t := range ts {
		if len(t.Name) == 0 || len(t.Name) > maxNameBytes {
			return fmt.Errorf("tensor name %q must be 1..%d bytes", t.Name, maxNameBytes)
		}
		if len(t.Dims) > maxRank {
			return fmt.Errorf("tensor %s has rank %d > %d", t.Name, len(t.Dims), maxRank)
		}
		if t.dataLen() != t.Elements() {
			return fmt.Errorf("tensor %s: %d values for dims %v", t.Name, t.dataLen(), t.Dims)
		}
		b.Write(le.AppendUint16(nil, uint16(len(t.Name))))
		b.WriteString(t.Name)
		b.WriteByte(byte(t.Store))
		b.WriteByte(byte(len(t.Dims)))
		for _, d := range t.Dims {
			b.Write(le.AppendUint32(nil, uint32(d)))
		}
		out := make([]byte, 0, t.Elements()*t.Store.size())
		switch t.Store {
		case Float32:
			for _, v := range t.F32 {
				out = le.AppendUint32(out, math.Float32bits(v))
			}
		case Float16:
			for _, v := range t.F32 {
				out = le.AppendUint16(out, uint16(float16.FromFloat32(v)))
			}
		case Int64:
			for _, v := range t.I64 {
				out = le.AppendUint64(out, uint64(v))
			}
		case Uint64:
			for _, v := range t.U64 {
				out = le.AppendUint64(out, v)
			}
		case Int32:
			for _, v := range t.I32 {
				out = le.AppendUint32(out, uint32(v))
			}
		default:
			return fmt.Errorf("tensor %s: unknown dtype %d", t.Name, t.Store)
		}
		b.Write(out)
	}
	sum := crc32.Checksum(b.Bytes(), crc32.MakeTable(crc32.Castagnoli))
	b.Write(le.AppendUint32(nil, sum))
	_, err = w.Write(b.Bytes())
	return err
}

// Read loads a file written by Write, verifying it completely.
func Read(path string) (Meta, []Tensor, error) { return ReadWith(path, nil) }

// ReadWith is Read with the float32 storage of the tensors from alloc
// (see DecodeFrom).
func ReadWith(path string, alloc Alloc) (Meta, []Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("modelfile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Meta{}, nil, fmt.Errorf("modelfile: %w", err)
	}
	if st.Size() > MaxFileSize {
		return Meta{}, nil, fmt.Errorf("modelfile: %s is %d bytes, larger than the %d limit", path, st.Size(), int64(MaxFileSize))
	}
	m, ts, err := DecodeFrom(f, st.Size(), alloc)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("modelfile: %s: %w", path, err)
	}
	return m, ts, nil
}

// ErrCorrupt is wrapped by every error about a damaged or foreign file.
var ErrCorrupt = errors.New("not a valid agegender model file (truncated, corrupt or another format); re-download or re-train it")

// Decode parses a whole file held in memory.
func Decode(data []byte) (Meta, []Tensor, error) {
	return DecodeFrom(bytes.NewReader(data), int64(len(data)), nil)
}

// Alloc returns the storage, len = the product of dims, for the float32
// values of the tensor called name; DecodeFrom fills it. It lets a caller
// decode weights straight into the memory that will hold them (a GoMLX
// tensor), with no copy.
type Alloc func(name string, dims []int) []float32

// DecodeFrom parses a file of size bytes read from r, streaming: the file
// is never held in memory whole, and float16 values are widened to
// float32 as they are read (at about the speed of a memory copy). Every
// length is checked against the bytes left before anything is allocated,
// so no allocation exceeds twice the file's size, and the checksum is
// verified at the end: a damaged file gives an error wrapping ErrCorrupt
// (a read error is returned as such). alloc, when not nil, provides the
// float32 storage of each Float32 or Float16 tensor.
func DecodeFrom(r io.Reader, size int64, alloc Alloc) (Meta, []Tensor, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if size < int64(len(magic))+12 || size > MaxFileSize {
		return Meta{}, nil, corrupt("missing %q header", magic)
	}
	sr := &stream{r: r, left: size - 4, crc: 0}
	meta, ts, err := decodeBody(sr, alloc, corrupt)
	if sr.ioErr != nil {
		return Meta{}, nil, sr.ioErr
	}
	// A damaged file is reported as such even when its damage first shows
	// as a bad length: read the rest of the body to check the sum.
	sr.err = nil
	for sr.left > 0 && sr.err == nil && sr.ioErr == nil {
		sr.next(int(min(sr.left, chunk)))
	}
	if sr.ioErr != nil {
		return Meta{}, nil, sr.ioErr
	}
	var tail [4]byte
	if _, e := io.ReadFull(r, tail[:]); e != nil {
		if e == io.EOF || e == io.ErrUnexpectedEOF {
			return Meta{}, nil, corrupt("checksum mismatch (file truncated or modified)")
		}
		return Meta{}, nil, e
	}
	if sr.crc != binary.LittleEndian.Uint32(tail[:]) {
		return Meta{}, nil, corrupt("checksum mismatch (file truncated or modified)")
	}
	if err != nil {
		return Meta{}, nil, err
	}
	return meta, ts, nil
}

// decodeBody parses everything between the magic and the checksum.
func decodeBody(r *stream, alloc Alloc, corrupt func(string, ...any) error) (Meta, []Tensor, error) {
	if string(r.bytes(len(magic))) != magic {
		return Meta{}, nil, corrupt("missing %q header", magic)
	}
	mlen := int(r.u32())
	if r.err != nil || mlen > maxMetaSize || int64(mlen) > r.left {
		return Meta{}, nil, corrupt("metadata length %d", mlen)
	}
	var meta Meta
	if err := json.Unmarshal(r.bytes(mlen), &meta); r.err != nil || err != nil {
		return Meta{}, nil, corrupt("metadata is not valid JSON: %v", err)
	}
	count := int(r.u32())
	if r.err != nil || count > maxTensors {
		return Meta{}, nil, corrupt("tensor count %d", count)
	}
	ts := make([]Tensor, 0, min(count, 1024))
	for i := 0; i < count; i++ {
		nlen := int(r.u16())
		if nlen == 0 || nlen > maxNameBytes {
			return Meta{}, nil, corrupt("tensor %d: name length %d", i, nlen)
		}
		name := string(r.bytes(nlen)) // before the next read reuses the buffer
		t := Tensor{Name: name, Store: DType(r.u8())}
		rank := int(r.u8())
		if r.err != nil || rank > maxRank || t.Store.size() == 0 {
			return Meta{}, nil, corrupt("tensor %q: rank %d dtype %d", t.Name, rank, t.Store)
		}
		n := 1
		for j := 0; j < rank; j++ {
			d := int(r.u32())
			if d < 0 || (d > 0 && int64(n) > r.left/int64(d)) {
				return Meta{}, nil, corrupt("tensor %q: dimensions too large", t.Name)
			}
			t.Dims = append(t.Dims, d)
			n *= d
		}
		if r.err != nil || int64(n)*int64(t.Store.size()) > r.left {
			return Meta{}, nil, corrupt("tensor %q: data runs past the end", t.Name)
		}
		switch t.Store {
		case Float32, Float16:
			if alloc != nil {
				t.F32 = alloc(t.Name, t.Dims)
				if len(t.F32) != n {
					return Meta{}, nil, fmt.Errorf("modelfile: tensor %q: storage for %d values, want %d", t.Name, len(t.F32), n)
				}
			} else {
				t.F32 = make([]float32, n)
			}
			if t.Store == Float32 {
				r.float32s(t.F32)
			} else {
				r.float16s(t.F32)
			}
		case Int64:
			t.I64 = make([]int64, n)
			for k := range t.I64 {
				t.I64[k] = int64(r.u64())
			}
		case Uint64:
			t.U64 = make([]uint64, n)
			for k := range t.U64 {
				t.U64[k] = r.u64()
			}
		case Int32:
			t.I32 = make([]int32, n)
			for k := range t.I32 {
				t.I32[k] = int32(r.u32())
			}
		}
		if r.err != nil {
			return Meta{}, nil, corrupt("tensor %q: data runs past the end", t.Name)
		}
		ts = append(ts, t)
	}
	if r.left != 0 {
		return Meta{}, nil, corrupt("%d unexpected bytes after the last tensor", r.left)
	}
	return meta, ts, nil
}

// half2float widens every float16 bit pattern exactly as
// float16.Float16.Float32 does, by table (256 KiB, built on first use).
var half2float = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = float16.FromBits(uint16(i)).Float32()
	}
	return &t
})

// stream reads the body of a file, summing what it reads (CRC-32C) and
// counting what is left of it. Reads past the body set err
// (io.ErrUnexpectedEOF), reader failures ioErr.
type stream struct {
	r     io.Reader
	left  int64 // body bytes not read yet
	crc   uint32
	buf   []byte
	err   error
	ioErr error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// next returns the next n bytes of the body (valid until the next read),
// or nil after setting err.
func (s *stream) next(n int) []byte {
	if s.err != nil || s.ioErr != nil || n < 0 || int64(n) > s.left {
		if s.err == nil {
			s.err = io.ErrUnexpectedEOF
		}
		return nil
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, max(n, 4096))
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			s.err = io.ErrUnexpectedEOF
			s.left = 0
		} else {
			s.ioErr = err
		}
		return nil
	}
	s.left -= int64(n)
	s.crc = crc32.Update(s.crc, castagnoli, b)
	return b
}

// bytes returns a view of the next n bytes, like next.
func (s *stream) bytes(n int) []byte { return s.next(n) }

// chunk is how many bytes of tensor data are read at a time.
const chunk = 256 << 10

func (s *stream) float32s(dst []float32) {
	for len(dst) > 0 {
		k := min(len(dst), chunk/4)
		b := s.next(4 * k)
		if b == nil {
			return
		}
		for i := range dst[:k] {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		dst = dst[k:]
	}
}

func (s *stream) float16s(dst []float32) {
	tab := half2float()
	for len(dst) > 0 {
		k := min(len(dst), chunk/2)
		b := s.next(2 * k)
		if b == nil {
			return
		}
		b = b[:2*k]
		for i := range dst[:k] {
			dst[i] = tab[uint16(b[2*i])|uint16(b[2*i+1])<<8]
		}
		dst = dst[k:]
	}
}

func (s *stream) u8() uint8 {
	b := s.next(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (s *stream) u16() uint16 {
	b := s.next(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *stream) u32() uint32 {
	b := s.next(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (s *stream) u64() uint64 {
	b := s.next(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}
