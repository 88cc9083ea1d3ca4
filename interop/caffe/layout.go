package caffe

import "fmt"

// Layout helpers: Caffe stores images and feature maps as NCHW with BGR
// colour channels; agegender (like TensorFlow) runs NHWC with RGB. These
// rearrange a layer's weights from Caffe's layout to agegender's.

// VGGFaceMeanRGB is the per-channel mean VGG-Face subtracts, in RGB order
// (its Caffe deploy feeds BGR minus 93.5940, 104.7624, 129.1863).
var VGGFaceMeanRGB = [3]float32{129.1863, 104.7624, 93.5940}

// ConvKernelHWIO turns a Caffe kernel [Cout, Cin, K, K] into [K, K, Cin, Cout],
// reversing the input channels when flip is set (BGR → RGB).
func ConvKernelHWIO(src []float32, cout, cin, k int, flip bool) []float32 {
	dst := make([]float32, len(src))
	for o := 0; o < cout; o++ {
		for ci := 0; ci < cin; ci++ {
			cd := ci
			if flip {
				cd = cin - 1 - ci
			}
			for y := 0; y < k; y++ {
				for x := 0; x < k; x++ {
					dst[((y*k+x)*cin+cd)*cout+o] = src[((o*cin+ci)*k+y)*k+x]
				}
			}
		}
	}
	return dst
}

// InnerProductCHWToHWC turns Caffe inner-product weights [Out, C·H·W], whose
// inputs are a feature map flattened in CHW order, into [H·W·C, Out] with
// the inputs in HWC order.
func InnerProductCHWToHWC(src []float32, out, c, h, w int) []float32 {
	dst := make([]float32, len(src))
	in := c * h * w
	for o := 0; o < out; o++ {
		row := src[o*in : (o+1)*in]
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					dst[((y*w+x)*c+ch)*out+o] = row[(ch*h+y)*w+x]
				}
			}
		}
	}
	return dst
}

// Transpose turns [rows, cols] into [cols, rows].
func Transpose(src []float32, rows, cols int) []float32 {
	dst := make([]float32, len(src))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			dst[c*rows+r] = src[r*cols+c]
		}
	}
	return dst
}

// MeanRGB averages a Caffe mean image (a BlobProto of shape [1, 3, H, W]
// or [3, H, W], BGR, as in mean.binaryproto) over its pixels and returns
// the per-channel means in RGB order, as agegender subtracts them.
func MeanRGB(b *Blob) ([3]float32, error) {
	s := b.Squeezed()
	if len(s) != 3 || s[0] != 3 || s[1]*s[2] == 0 {
		return [3]float32{}, fmt.Errorf("caffe: mean blob has shape %v, want [1, 3, H, W]", b.Shape)
	}
	n := s[1] * s[2]
	var out [3]float32
	for c := 0; c < 3; c++ {
		var sum float64
		for _, v := range b.Data[c*n : (c+1)*n] {
			sum += float64(v)
		}
		out[2-c] = float32(sum / float64(n))
	}
	return out, nil
}
