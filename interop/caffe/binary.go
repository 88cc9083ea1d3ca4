package caffe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxModelSize is the default limit on a .caffemodel's size used by
// [ReadNetParameterFile] and [ReadBlob] (2 GiB, protobuf's own limit;
// VGG-Face is 580 MB).
const MaxModelSize = 2 << 30

// maxAxes is Caffe's limit on a blob's rank (kMaxBlobAxes).
const maxAxes = 32

// Blob is one parameter array of a layer (Caffe's BlobProto), in Caffe's
// layout: convolution weights [Cout, Cin/group, KH, KW], inner-product
// weights [Out, In], biases [Out]. Blobs of V1 files carry the legacy
// 4-D shape num×channels×height×width, so a bias reads [1, 1, 1, Out];
// compare shapes with [Blob.Squeezed].
type Blob struct {
	Shape []int
	Data  []float32
}

// Squeezed returns the shape without leading 1s, so legacy 4-D shapes
// compare equal to their V2 counterparts ([1, 1, 512, 18816] → [512, 18816]).
func (b *Blob) Squeezed() []int {
	s := b.Shape
	for len(s) > 1 && s[0] == 1 {
		s = s[1:]
	}
	return s
}

// Layer is one layer of a trained net and its parameter blobs. Type is in
// V2 spelling whichever generation the file used.
type Layer struct {
	Name, Type string
	Blobs      []Blob
}

// Weights is the content of a .caffemodel: the net's name and its layers
// in file order. Layers without parameters (ReLU, pooling) are listed with
// no blobs.
type Weights struct {
	Name   string
	Layers []Layer
	// V1 reports that the file used the legacy `layers` field.
	V1 bool
}

// Layer returns the layer named name, or nil.
func (w *Weights) Layer(name string) *Layer {
	for i := range w.Layers {
		if w.Layers[i].Name == name {
			return &w.Layers[i]
		}
	}
	return nil
}

// Field numbers of caffe.proto used here.
const (
	netName     = 1   // NetParameter.name
	netLayersV1 = 2   // NetParameter.layers (V1LayerParameter)
	netLayer    = 100 // NetParameter.layer (LayerParameter)

	layerName  = 1 // LayerParameter.name
	layerType  = 2 // LayerParameter.type (string)
	layerBlobs = 7 // LayerParameter.blobs

	v1Name  = 4 // V1LayerParameter.name
	v1Type  = 5 // V1LayerParameter.type (enum LayerType)
	v1Blobs = 6 // V1LayerParameter.blobs

	blobNum        = 1 // BlobProto legacy dims
	blobChannels   = 2
	blobHeight     = 3
	blobWidth      = 4
	blobData       = 5 // repeated float, packed
	blobShape      = 7 // BlobShape
	blobDoubleData = 8 // repeated double, packed

	shapeDim = 1 // BlobShape.dim, repeated int64, packed
)

// ErrFormat is wrapped by every error about a damaged or foreign file.
var ErrFormat = errors.New("not a valid Caffe protobuf file (truncated, corrupt or another format)")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// ReadNetParameterFile reads a .caffemodel file of at most [MaxModelSize]
// bytes; errors name the file.
func ReadNetParameterFile(path string) (*Weights, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("caffe: %w", err)
	}
	defer f.Close()
	w, err := ReadNetParameter(f, MaxModelSize)
	if err != nil {
		return nil, fmt.Errorf("caffe: %s: %w", path, err)
	}
	return w, nil
}

// ReadNetParameter decodes a binary NetParameter (a .caffemodel) of at
// most maxBytes bytes. It keeps each layer's name, type and blobs and
// skips every other field, in either the V2 (`layer`, field 100) or the V1
// (`layers`, field 2) layout. The whole input is held in memory, and no
// allocation exceeds what the input's bytes can fill.
func ReadNetParameter(r io.Reader, maxBytes int64) (*Weights, error) {
	data, err := readLimited(r, maxBytes)
	if err != nil {
		return nil, err
	}
	w := &Weights{}
	var v1, v2 bool
	err = fields(data, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		case num == netName && typ == protowire.BytesType:
			w.Name = string(val)
		case (num == netLayer || num == netLayersV1) && typ == protowire.BytesType:
			l, err := decodeLayer(val, num == netLayersV1)
			if err != nil {
				return fmt.Errorf("layer %d: %w", len(w.Layers), err)
			}
			v1 = v1 || num == netLayersV1
			v2 = v2 || num == netLayer
			w.Layers = append(w.Layers, l)
		}
		return nil
	})
	if err != nil {
		if n := len(w.Layers); n > 0 {
			// Say where: a truncated file ends inside the layer after that.
			err = fmt.Errorf("%w (after layer %d, %q)", err, n-1, w.Layers[n-1].Name)
		}
		return nil, err
	}
	if v1 && v2 {
		return nil, formatErr("mixes V1 'layers' and V2 'layer' entries")
	}
	if len(w.Layers) == 0 {
		return nil, formatErr("no layers")
	}
	w.V1 = v1
	return w, nil
}

// ReadBlob reads a lone BlobProto file, such as Caffe's mean image
// (mean.binaryproto), of at most [MaxModelSize] bytes.
func ReadBlob(path string) (*Blob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("caffe: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, MaxModelSize)
	if err == nil {
		var b Blob
		if b, err = decodeBlob(data); err == nil {
			return &b, nil
		}
	}
	return nil, fmt.Errorf("caffe: %s: %w", path, err)
}

func readLimited(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("caffe: size limit %d must be positive", maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("larger than the %d-byte limit", maxBytes)
	}
	return data, nil
}

// fields walks the top-level fields of one protobuf message, calling fn
// with each field's number, wire type and raw value (the payload for
// length-delimited fields, the varint/fixed bytes otherwise).
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return formatErr("bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var val []byte
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return formatErr("field %d: %v", num, protowire.ParseError(m))
			}
			val, n = v, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return formatErr("field %d: %v", num, protowire.ParseError(n))
			}
			val = b[:n]
		}
		b = b[n:]
		if err := fn(num, typ, val); err != nil {
			return err
		}
	}
	return nil
}

func decodeLayer(b []byte, v1 bool) (Layer, error) {
	var l Layer
	nameF, typeF, blobsF := protowire.Number(layerName), protowire.Number(layerType), protowire.Number(layerBlobs)
	if v1 {
		nameF, typeF, blobsF = v1Name, v1Type, v1Blobs
	}
	err := fields(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		case num == nameF && typ == protowire.BytesType:
			l.Name = string(val)
		case num == typeF && !v1 && typ == protowire.BytesType:
			l.Type = string(val)
		case num == typeF && v1 && typ == protowire.VarintType:
			e, _ := protowire.ConsumeVarint(val)
			if l.Type = v1TypeNum(e); l.Type == "" {
				l.Type = fmt.Sprintf("V1 type %d", e)
			}
		case num == blobsF && typ == protowire.BytesType:
			blob, err := decodeBlob(val)
			if err != nil {
				return fmt.Errorf("%q: blob %d: %w", l.Name, len(l.Blobs), err)
			}
			l.Blobs = append(l.Blobs, blob)
		}
		return nil
	})
	return l, err
}

// decodeBlob decodes a BlobProto. Its shape is BlobShape (field 7) when
// present, otherwise the legacy num/channels/height/width; the values are
// the packed floats of field 5 or, failing those, the doubles of field 8.
// The number of values must equal the product of the shape.
func decodeBlob(b []byte) (Blob, error) {
	var (
		blob           Blob
		legacy         [4]int
		hasLegacy      bool
		hasShape       bool
		f32Count, f64s int
	)
	// A first pass counts the values, so each slice is allocated once at
	// its final size; counts come from byte lengths, so are bounded by len(b).
	err := fields(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		case num == blobData && typ == protowire.BytesType:
			if len(val)%4 != 0 {
				return formatErr("packed float data of %d bytes is not a multiple of 4", len(val))
			}
			f32Count += len(val) / 4
		case num == blobData && typ == protowire.Fixed32Type:
			f32Count++
		case num == blobDoubleData && typ == protowire.BytesType:
			if len(val)%8 != 0 {
				return formatErr("packed double data of %d bytes is not a multiple of 8", len(val))
			}
			f64s += len(val) / 8
		case num == blobDoubleData && typ == protowire.Fixed64Type:
			f64s++
		case num == blobShape && typ == protowire.BytesType:
			if hasShape {
				return formatErr("two shapes")
			}
			hasShape = true
			dims, err := decodeShape(val)
			if err != nil {
				return err
			}
			blob.Shape = dims
		case num >= blobNum && num <= blobWidth && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			if int64(v) < 0 || v > math.MaxInt32 {
				return formatErr("legacy dimension %d out of range", int64(v))
			}
			legacy[num-blobNum] = int(v)
			hasLegacy = true
		}
		return nil
	})
	if err != nil {
		return Blob{}, err
	}
	count := f32Count
	if f32Count == 0 {
		count = f64s
	}
	switch {
	case hasShape:
	case hasLegacy:
		// Caffe writes all four legacy dimensions; a missing one reads as
		// 0 and fails the count check below.
		blob.Shape = legacy[:]
	default:
		blob.Shape = []int{count}
	}
	// The product saturates just above what the input could hold, so a
	// hostile shape cannot overflow it.
	want, limit := 1, len(b)+1
	for _, d := range blob.Shape {
		if d != 0 && want > limit/d {
			want = limit
		} else {
			want *= d
		}
	}
	if want != count {
		return Blob{}, formatErr("shape %v needs %s values, blob has %d", blob.Shape, countString(want, limit), count)
	}
	blob.Data = make([]float32, 0, count)
	err = fields(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		// The same (field, wire type) cases as the counting pass: a field
		// of another wire type was not counted and is ignored here too.
		case num == blobData && f32Count > 0 && (typ == protowire.BytesType || typ == protowire.Fixed32Type):
			if typ == protowire.Fixed32Type {
				val = val[:4]
			}
			for i := 0; i+4 <= len(val); i += 4 {
				blob.Data = append(blob.Data, math.Float32frombits(le32(val[i:])))
			}
		case num == blobDoubleData && f32Count == 0 && (typ == protowire.BytesType || typ == protowire.Fixed64Type):
			if typ == protowire.Fixed64Type {
				val = val[:8]
			}
			for i := 0; i+8 <= len(val); i += 8 {
				blob.Data = append(blob.Data, float32(math.Float64frombits(le64(val[i:]))))
			}
		}
		return nil
	})
	return blob, err
}

func countString(n, limit int) string {
	if n >= limit {
		return "more"
	}
	return fmt.Sprint(n)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// decodeShape reads BlobShape.dim, packed or not.
func decodeShape(b []byte) ([]int, error) {
	var dims []int
	add := func(v uint64) error {
		if int64(v) < 0 || v > math.MaxInt32 {
			return formatErr("blob dimension %d out of range", int64(v))
		}
		if len(dims) >= maxAxes {
			return formatErr("blob has more than %d axes", maxAxes)
		}
		dims = append(dims, int(v))
		return nil
	}
	err := fields(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		if num != shapeDim {
			return nil
		}
		switch typ {
		case protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			return add(v)
		case protowire.BytesType:
			for len(val) > 0 {
				v, n := protowire.ConsumeVarint(val)
				if n < 0 {
					return formatErr("packed dimensions: %v", protowire.ParseError(n))
				}
				if err := add(v); err != nil {
					return err
				}
				val = val[n:]
			}
		}
		return nil
	})
	if dims == nil {
		dims = []int{}
	}
	return dims, err
}

// WriteOptions chooses the layout WriteNetParameter produces.
type WriteOptions struct {
	// Name is the net's name (NetParameter.name).
	Name string
	// V1 writes the legacy layout of Caffe before 2015 (`layers`, field 2;
	// enum types; blobs with num/channels/height/width padded to 4-D with
	// leading 1s), as the paper's caffemodels were written.
	V1 bool
	// Double stores blob values as double_data instead of data.
	Double bool
}

// WriteNetParameter encodes layers as a binary NetParameter (a
// .caffemodel). It exists to build test fixtures and to export weights
// back to Caffe; opts may be nil.
func WriteNetParameter(w io.Writer, layers []Layer, opts *WriteOptions) error {
	if opts == nil {
		opts = &WriteOptions{}
	}
	var out []byte
	if opts.Name != "" {
		out = protowire.AppendTag(out, netName, protowire.BytesType)
		out = protowire.AppendString(out, opts.Name)
	}
	for _, l := range layers {
		var lb []byte
		if opts.V1 {
			enum, ok := v1Enum(l.Type)
			if !ok {
				return fmt.Errorf("caffe: layer %q: type %q has no V1 equivalent", l.Name, l.Type)
			}
			lb = protowire.AppendTag(lb, v1Name, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, v1Type, protowire.VarintType)
			lb = protowire.AppendVarint(lb, uint64(enum))
		} else {
			lb = protowire.AppendTag(lb, layerName, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, layerType, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Type)
		}
		for i, b := range l.Blobs {
			bb, err := encodeBlob(&b, opts)
			if err != nil {
				return fmt.Errorf("caffe: layer %q: blob %d: %w", l.Name, i, err)
			}
			field := protowire.Number(layerBlobs)
			if opts.V1 {
				field = v1Blobs
			}
			lb = protowire.AppendTag(lb, field, protowire.BytesType)
			lb = protowire.AppendBytes(lb, bb)
		}
		field := protowire.Number(netLayer)
		if opts.V1 {
			field = netLayersV1
		}
		out = protowire.AppendTag(out, field, protowire.BytesType)
		out = protowire.AppendBytes(out, lb)
	}
	_, err := w.Write(out)
	return err
}

func encodeBlob(b *Blob, opts *WriteOptions) ([]byte, error) {
	n := 1
	for _, d := range b.Shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in %v", b.Shape)
		}
		n *= d
	}
	if n != len(b.Data) {
		return nil, fmt.Errorf("shape %v needs %d values, got %d", b.Shape, n, len(b.Data))
	}
	var out []byte
	if opts.V1 {
		if len(b.Shape) > 4 {
			return nil, fmt.Errorf("V1 blobs have at most 4 axes, shape %v", b.Shape)
		}
		dims := [4]int{1, 1, 1, 1}
		copy(dims[4-len(b.Shape):], b.Shape)
		for i, d := range dims {
			out = protowire.AppendTag(out, protowire.Number(blobNum+i), protowire.VarintType)
			out = protowire.AppendVarint(out, uint64(d))
		}
	} else {
		var sb []byte
		for _, d := range b.Shape {
			sb = protowire.AppendVarint(sb, uint64(d))
		}
		var shape []byte
		shape = protowire.AppendTag(shape, shapeDim, protowire.BytesType)
		shape = protowire.AppendBytes(shape, sb)
		out = protowire.AppendTag(out, blobShape, protowire.BytesType)
		out = protowire.AppendBytes(out, shape)
	}
	var data bytes.Buffer
	if opts.Double {
		data.Grow(8 * len(b.Data))
		for _, v := range b.Data {
			u := math.Float64bits(float64(v))
			data.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24), byte(u >> 32), byte(u >> 40), byte(u >> 48), byte(u >> 56)})
		}
		out = protowire.AppendTag(out, blobDoubleData, protowire.BytesType)
	} else {
		data.Grow(4 * len(b.Data))
		for _, v := range b.Data {
			u := math.Float32bits(v)
			data.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
		}
		out = protowire.AppendTag(out, blobData, protowire.BytesType)
	}
	return protowire.AppendBytes(out, data.Bytes()), nil
}
