package modelfile

import (
	"bytes"
	"testing"
)

func seed() []byte {
	var b bytes.Buffer
	Encode(&b, Meta{Kind: "model", Payload: []byte(`{"a":1}`)}, []Tensor{
		{Name: "/net/w", Dims: []int{2, 3}, Store: Float32, F32: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "/net/h", Dims: []int{2}, Store: Float16, F32: []float32{0.5, -2}},
		{Name: "/step", Dims: []int{}, Store: Int64, I64: []int64{7}},
	})
	return b.Bytes()
}

// FuzzDecode: any bytes decode to a consistent model or an error wrapping
// ErrCorrupt; never a panic or an allocation beyond the input's size.
func FuzzDecode(f *testing.F) {
	good := seed()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, ts, err := Decode(data)
		if err != nil {
			return
		}
		for _, x := range ts {
			if x.dataLen() != x.Elements() {
				t.Fatalf("tensor %s: %d values for dims %v", x.Name, x.dataLen(), x.Dims)
			}
		}
	})
}
