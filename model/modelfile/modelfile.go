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
func Read(path string) (Meta, []Tensor, error) {
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
	data, err := io.ReadAll(f)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("modelfile: reading %s: %w", path, err)
	}
	m, ts, err := Decode(data)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("modelfile: %s: %w", path, err)
	}
	return m, ts, nil
}

// ErrCorrupt is wrapped by every error about a damaged or foreign file.
var ErrCorrupt = errors.New("not a valid agegender model file (truncated, corrupt or another format); re-download or re-train it")

// Decode parses a whole file held in memory.
func Decode(data []byte) (Meta, []Tensor, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(data) < len(magic)+12 || string(data[:len(magic)]) != magic {
		return Meta{}, nil, corrupt("missing %q header", magic)
	}
	body, tail := data[:len(data)-4], data[len(data)-4:]
	le := binary.LittleEndian
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != le.Uint32(tail) {
		return Meta{}, nil, corrupt("checksum mismatch (file truncated or modified)")
	}
	r := reader{b: body[len(magic):]}
	mlen := int(r.u32())
	if r.err != nil || mlen > maxMetaSize {
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
		t := Tensor{Name: string(r.bytes(nlen)), Store: DType(r.u8())}
		rank := int(r.u8())
		if r.err != nil || rank > maxRank || t.Store.size() == 0 {
			return Meta{}, nil, corrupt("tensor %q: rank %d dtype %d", t.Name, rank, t.Store)
		}
		n := 1
		for j := 0; j < rank; j++ {
			d := int(r.u32())
			if d < 0 || (d > 0 && n > len(data)/d) {
				return Meta{}, nil, corrupt("tensor %q: dimensions too large", t.Name)
			}
			t.Dims = append(t.Dims, d)
			n *= d
		}
		raw := r.bytes(n * t.Store.size())
		if r.err != nil {
			return Meta{}, nil, corrupt("tensor %q: data runs past the end", t.Name)
		}
		switch t.Store {
		case Float32:
			t.F32 = make([]float32, n)
			for k := range t.F32 {
				t.F32[k] = math.Float32frombits(le.Uint32(raw[4*k:]))
			}
		case Float16:
			t.F32 = make([]float32, n)
			for k := range t.F32 {
				t.F32[k] = float16.FromBits(le.Uint16(raw[2*k:])).Float32()
			}
		case Int64:
			t.I64 = make([]int64, n)
			for k := range t.I64 {
				t.I64[k] = int64(le.Uint64(raw[8*k:]))
			}
		case Uint64:
			t.U64 = make([]uint64, n)
			for k := range t.U64 {
				t.U64[k] = le.Uint64(raw[8*k:])
			}
		case Int32:
			t.I32 = make([]int32, n)
			for k := range t.I32 {
				t.I32[k] = int32(le.Uint32(raw[4*k:]))
			}
		}
		ts = append(ts, t)
	}
	if len(r.b) != 0 {
		return Meta{}, nil, corrupt("%d unexpected bytes after the last tensor", len(r.b))
	}
	return meta, ts, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}
