package caffe

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The Adience mean image's per-channel averages (B, G, R), computed once
// from mean.binaryproto.
var adienceMeanBGR = [3]float64{78.426338, 87.768914, 114.895848}

func TestReadRealMean(t *testing.T) {
	b, err := ReadBlob(realFile(t, "mean.binaryproto"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Shape, []int{1, 3, 256, 256}) || len(b.Data) != 3*256*256 {
		t.Fatalf("mean blob shape %v with %d values, want [1 3 256 256]", b.Shape, len(b.Data))
	}
	rgb, err := MeanRGB(b)
	if err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 3; c++ {
		got := float64(rgb[2-c])
		if math.Abs(got-adienceMeanBGR[c]) > 1e-3 {
			t.Errorf("channel %d (BGR) mean %.6f, want %.6f", c, got, adienceMeanBGR[c])
		}
		// Plausible for face crops: mid-grey-ish, red the largest.
		if got < 60 || got > 150 {
			t.Errorf("channel %d (BGR) mean %.2f is not a plausible 0..255 image mean", c, got)
		}
	}
	if !(rgb[0] > rgb[1] && rgb[1] > rgb[2]) {
		t.Errorf("RGB mean %v: faces should average R > G > B; channels flipped?", rgb)
	}
}

func TestBlobRoundTrip(t *testing.T) {
	layers := []Layer{
		{Name: "conv", Type: "Convolution", Blobs: []Blob{
			{Shape: []int{2, 3, 2, 2}, Data: seq(24)}, {Shape: []int{2}, Data: []float32{-1, 1.5}}}},
		{Name: "relu", Type: "ReLU"},
		{Name: "fc", Type: "InnerProduct", Blobs: []Blob{
			{Shape: []int{3, 4}, Data: seq(12)}, {Shape: []int{3}, Data: []float32{float32(math.Inf(1)), 0, -0.25}}}},
	}
	for _, opts := range []WriteOptions{{Name: "n"}, {Name: "n", V1: true}, {Name: "n", Double: true}, {Name: "n", V1: true, Double: true}} {
		var buf bytes.Buffer
		if err := WriteNetParameter(&buf, layers, &opts); err != nil {
			t.Fatal(err)
		}
		w, err := ReadNetParameter(&buf, 1<<20)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if w.Name != "n" || w.V1 != opts.V1 || len(w.Layers) != 3 {
			t.Fatalf("%+v: got %+v", opts, w)
		}
		for i, l := range w.Layers {
			want := layers[i]
			if l.Name != want.Name || l.Type != want.Type || len(l.Blobs) != len(want.Blobs) {
				t.Fatalf("%+v: layer %d = %s %s with %d blobs", opts, i, l.Name, l.Type, len(l.Blobs))
			}
			for j, b := range l.Blobs {
				ws := want.Blobs[j].Shape
				if opts.V1 {
					ws = append(make([]int, 4-len(ws)), ws...) // legacy num/channels/height/width
					for k := range ws[:4-len(want.Blobs[j].Shape)] {
						ws[k] = 1
					}
				}
				if !reflect.DeepEqual(b.Shape, ws) || !reflect.DeepEqual(b.Data, want.Blobs[j].Data) {
					t.Errorf("%+v: %s blob %d = %v %v, want %v %v", opts, l.Name, j, b.Shape, b.Data, ws, want.Blobs[j].Data)
				}
				if !reflect.DeepEqual(b.Squeezed(), (&Blob{Shape: want.Blobs[j].Shape}).Squeezed()) {
					t.Errorf("%+v: squeezed %v", opts, b.Squeezed())
				}
			}
		}
	}
}

func TestWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNetParameter(&buf, []Layer{{Name: "x", Type: "BatchNorm"}}, &WriteOptions{V1: true}); err == nil {
		t.Error("V1 accepted a type that has no V1 enum")
	}
	if err := WriteNetParameter(&buf, []Layer{{Name: "x", Type: "ReLU", Blobs: []Blob{{Shape: []int{3}, Data: seq(2)}}}}, nil); err == nil {
		t.Error("a blob with the wrong number of values was written")
	}
}

// TestUnpackedValues reads blobs written the way protobuf encoders may
// (non-packed repeated floats and dims), which Caffe's parser accepts.
func TestUnpackedValues(t *testing.T) {
	var shape, blob, layer, net []byte
	for _, d := range []uint64{1, 2} {
		shape = protowire.AppendTag(shape, shapeDim, protowire.VarintType)
		shape = protowire.AppendVarint(shape, d)
	}
	blob = protowire.AppendTag(blob, blobShape, protowire.BytesType)
	blob = protowire.AppendBytes(blob, shape)
	for _, v := range []float32{3, -4} {
		blob = protowire.AppendTag(blob, blobData, protowire.Fixed32Type)
		blob = protowire.AppendFixed32(blob, math.Float32bits(v))
	}
	blob = protowire.AppendTag(blob, 99, protowire.VarintType) // unknown field, skipped
	blob = protowire.AppendVarint(blob, 7)
	layer = protowire.AppendTag(layer, layerName, protowire.BytesType)
	layer = protowire.AppendString(layer, "b")
	layer = protowire.AppendTag(layer, layerBlobs, protowire.BytesType)
	layer = protowire.AppendBytes(layer, blob)
	net = protowire.AppendTag(net, netLayer, protowire.BytesType)
	net = protowire.AppendBytes(net, layer)
	w, err := ReadNetParameter(bytes.NewReader(net), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if b := w.Layer("b").Blobs[0]; !reflect.DeepEqual(b.Shape, []int{1, 2}) || !reflect.DeepEqual(b.Data, []float32{3, -4}) {
		t.Errorf("got %v %v", b.Shape, b.Data)
	}
}

func TestReadCorrupt(t *testing.T) {
	var good bytes.Buffer
	if err := WriteNetParameter(&good, []Layer{{Name: "fc", Type: "InnerProduct", Blobs: []Blob{{Shape: []int{2, 3}, Data: seq(6)}}}}, &WriteOptions{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	// Every truncation is an error (none happens to be a valid file: the
	// value count must match the shape), never a panic.
	for n := 0; n < len(g); n++ {
		if _, err := ReadNetParameter(bytes.NewReader(g[:n]), 1<<20); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(g))
		}
	}
	// Every single-byte corruption is an error or a well-formed result.
	for i := range g {
		for _, x := range []byte{0xff, 0x80, 0x00, 0x07} {
			c := bytes.Clone(g)
			c[i] ^= x
			if w, err := ReadNetParameter(bytes.NewReader(c), 1<<20); err == nil {
				checkWellFormed(t, w)
			}
		}
	}
	if _, err := ReadNetParameter(bytes.NewReader(g), int64(len(g)-1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("size limit not enforced: %v", err)
	}
	// A shape declaring billions of values in a few bytes.
	huge := hugeShapeFile()
	if _, err := ReadNetParameter(bytes.NewReader(huge), 1<<20); err == nil || !errors.Is(err, ErrFormat) {
		t.Errorf("huge shape: %v", err)
	}
	if _, err := ReadBlob("testdata/does-not-exist.binaryproto"); err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Errorf("missing file: %v", err)
	}
}

func hugeShapeFile() []byte {
	var shape, blob, layer, net []byte
	var packed []byte
	for range 4 {
		packed = protowire.AppendVarint(packed, math.MaxInt32)
	}
	shape = protowire.AppendTag(shape, shapeDim, protowire.BytesType)
	shape = protowire.AppendBytes(shape, packed)
	blob = protowire.AppendTag(blob, blobShape, protowire.BytesType)
	blob = protowire.AppendBytes(blob, shape)
	blob = protowire.AppendTag(blob, blobData, protowire.BytesType)
	blob = protowire.AppendBytes(blob, make([]byte, 16))
	layer = protowire.AppendTag(layer, layerBlobs, protowire.BytesType)
	layer = protowire.AppendBytes(layer, blob)
	net = protowire.AppendTag(net, netLayer, protowire.BytesType)
	return protowire.AppendBytes(net, layer)
}

func checkWellFormed(t testing.TB, w *Weights) {
	t.Helper()
	for _, l := range w.Layers {
		for _, b := range l.Blobs {
			n := 1
			for _, d := range b.Shape {
				if d < 0 {
					t.Fatalf("negative dimension %v", b.Shape)
				}
				n *= d
			}
			if n != len(b.Data) {
				t.Fatalf("layer %q: shape %v with %d values", l.Name, b.Shape, len(b.Data))
			}
		}
	}
}

// FuzzReadNetParameter feeds arbitrary bytes to the reader: it must return
// an error or well-formed weights, never panic or allocate beyond the input.
func FuzzReadNetParameter(f *testing.F) {
	for _, opts := range []*WriteOptions{nil, {V1: true, Name: "x"}, {Double: true}} {
		var buf bytes.Buffer
		layers := []Layer{{Name: "c", Type: "Convolution", Blobs: []Blob{{Shape: []int{2, 1, 1, 2}, Data: seq(4)}, {Shape: []int{2}, Data: seq(2)}}}}
		if err := WriteNetParameter(&buf, layers, opts); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(hugeShapeFile())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ReadNetParameter(bytes.NewReader(data), 1<<16)
		if err == nil {
			checkWellFormed(t, w)
		}
	})
}

func seq(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i) - float32(n)/3
	}
	return out
}
