package transfer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/agegender/agegender/internal/atomicfile"
	"github.com/gomlx/compute/dtypes/float16"
)

// The feature cache file holds the features of one backbone on one list of
// samples, as float16 (half the size of float32, and far more precise than
// the head needs). Layout, little-endian:
//
//	magic  [8]byte  "AGFEAT01"
//	key    uint64   FNV-1a of the backbone, output, view and samples (see streamKey)
//	n, dim uint32   rows and feature length
//	index  n×int32  position of each row in the sample list
//	rows   n×dim×uint16  IEEE half-precision features
//
// A file whose key does not match is stale and is recomputed; a file of the
// wrong length or with impossible values is an error naming it.
//
// An extraction in progress keeps a partial file next to it (the cache
// file's name + ".partial"), in the same layout with magic "AGFEATP1" and
// one more header field after dim: done uint32, the number of samples
// from the start of the list that it covers. An interrupted extraction
// resumes from there.
const (
	cacheMagic   = "AGFEAT01"
	partialMagic = "AGFEATP1"
)

// maxCacheDim bounds the feature length accepted from a cache file.
const maxCacheDim = 1 << 16

// WriteCache writes f atomically (a temporary file renamed into place),
// streaming it: memory holds one row's bytes beyond f itself.
func WriteCache(path string, key uint64, dim int, f Features) error {
	return writeFeatures(path, cacheMagic, key, dim, f, 0)
}

// writePartial writes the partial file of an extraction that has covered
// the first done samples.
func writePartial(path string, key uint64, dim int, f Features, done int) error {
	return writeFeatures(path, partialMagic, key, dim, f, done)
}

// writeFeatures writes a cache (magic cacheMagic) or partial (magic
// partialMagic, with done) file.
func writeFeatures(path, magic string, key uint64, dim int, f Features, done int) error {
	for r, row := range f.Rows {
		if len(row) != dim {
			return fmt.Errorf("transfer: %s: row %d has %d features, want %d", path, r, len(row), dim)
		}
	}
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		bw.WriteString(magic)
		binary.Write(bw, binary.LittleEndian, key)
		binary.Write(bw, binary.LittleEndian, uint32(len(f.Rows)))
		binary.Write(bw, binary.LittleEndian, uint32(dim))
		if magic == partialMagic {
			binary.Write(bw, binary.LittleEndian, uint32(done))
		}
		idx := make([]byte, 4*len(f.Index))
		for k, i := range f.Index {
			binary.LittleEndian.PutUint32(idx[4*k:], uint32(int32(i)))
		}
		bw.Write(idx)
		b := make([]byte, 2*dim)
		for _, row := range f.Rows {
			for j, v := range row {
				binary.LittleEndian.PutUint16(b[2*j:], float16.FromFloat32(v).Bits())
			}
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	return nil
}

// errStale reports a cache file made for other samples or another backbone.
var errStale = errors.New("stale feature cache")

// ReadCache reads a cache file written by [WriteCache] for key, with rows
// of dim features whose index is below numSamples. A missing file is
// returned as is (test with errors.Is(err, fs.ErrNotExist)); a file for
// another key gives an error wrapping errStale.
func ReadCache(path string, key uint64, dim, numSamples int) (Features, error) {
	f, _, err := readFeatures(path, cacheMagic, key, dim, numSamples)
	return f, err
}

// readPartial reads a partial file written by writePartial for key, and
// the number of samples it covers.
func readPartial(path string, key uint64, dim, numSamples int) (Features, int, error) {
	return readFeatures(path, partialMagic, key, dim, numSamples)
}

// readFeatures reads a cache or partial file (by magic; done is 0 for a
// cache file).
func readFeatures(path, magic string, key uint64, dim, numSamples int) (f Features, done int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return f, 0, err
	}
	// The key is checked before any size: a cache of other samples (say
	// of a run with another --limit) is stale, to be recomputed, not an
	// error.
	head := 8 + 8 + 4 + 4
	if magic == partialMagic {
		head += 4
	}
	if st.Size() < int64(head) {
		return f, 0, fmt.Errorf("transfer: %s: %d bytes, too short for a feature cache (delete it)", path, st.Size())
	}
	file, err := os.Open(path)
	if err != nil {
		return f, 0, fmt.Errorf("transfer: %w", err)
	}
	defer file.Close()
	// Read in a stream, so that memory holds the float32 rows and one
	// buffer, not the file's bytes as well.
	r := bufio.NewReaderSize(file, 1<<20)
	hb := make([]byte, head)
	if _, err := io.ReadFull(r, hb); err != nil {
		return f, 0, fmt.Errorf("transfer: %s: %w", path, err)
	}
	if string(hb[:8]) != magic {
		return f, 0, fmt.Errorf("transfer: %s: not a feature cache (bad magic)", path)
	}
	if k := binary.LittleEndian.Uint64(hb[8:]); k != key {
		return f, 0, fmt.Errorf("transfer: %s: %w", path, errStale)
	}
	n := int(binary.LittleEndian.Uint32(hb[16:]))
	d := int(binary.LittleEndian.Uint32(hb[20:]))
	if magic == partialMagic {
		done = int(binary.LittleEndian.Uint32(hb[24:]))
		if done > numSamples {
			return f, 0, fmt.Errorf("transfer: %s: covers %d samples, the list has %d", path, done, numSamples)
		}
	}
	if d != dim || d > maxCacheDim || n > numSamples {
		return f, 0, fmt.Errorf("transfer: %s: %d rows of %d features, want at most %d rows of %d", path, n, d, numSamples, dim)
	}
	if want := int64(head) + int64(n)*int64(4+2*d); st.Size() != want {
		return f, 0, fmt.Errorf("transfer: %s: %d bytes, want %d for %d rows of %d features", path, st.Size(), want, n, d)
	}
	ib := make([]byte, 4*n)
	if _, err := io.ReadFull(r, ib); err != nil {
		return f, 0, fmt.Errorf("transfer: %s: %w", path, err)
	}
	f.Index = make([]int, n)
	for i := range f.Index {
		v := int(int32(binary.LittleEndian.Uint32(ib[4*i:])))
		if v < 0 || v >= numSamples || (magic == partialMagic && v >= done) {
			return Features{}, 0, fmt.Errorf("transfer: %s: row %d has sample index %d outside 0..%d", path, i, v, numSamples-1)
		}
		f.Index[i] = v
	}
	flat := make([]float32, n*d)
	rb := make([]byte, 2*d)
	for row := range n {
		if _, err := io.ReadFull(r, rb); err != nil {
			return Features{}, 0, fmt.Errorf("transfer: %s: %w", path, err)
		}
		for j := range d {
			v := float16.FromBits(binary.LittleEndian.Uint16(rb[2*j:])).Float32()
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return Features{}, 0, fmt.Errorf("transfer: %s: feature %d of row %d is %v", path, j, row, v)
			}
			flat[row*d+j] = v
		}
	}
	f.Rows = make([][]float32, n)
	for i := range f.Rows {
		f.Rows[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return f, done, nil
}
