package faceapi

import (
	"image"
	"image/color"
	"math"
)

// Pixels returns img as the net's input, [Size, Size, 3] float32 RGB on the
// 0..255 scale in row-major (NHWC) order, prepared as face-api's
// NetInput.toBatchTensor(112, true) prepares a tensor: the shorter side is
// padded with black to a square, the padding split between both sides
// (an odd pixel after the image), then resized with TensorFlow's
// bilinear resize without align-corners or half-pixel centres
// (tf.image.resizeBilinear(x, [112, 112], false, false)). An image of
// [Size]×[Size] is passed through unchanged. Pixels panics on an empty
// image.
func Pixels(img image.Image) []float32 {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		panic("faceapi: Pixels of an empty image")
	}
	side := max(w, h)
	// padToSquare: paddingAmount = round(diff/2) goes after the image, the
	// rest before it.
	diff := side - min(w, h)
	before := diff - int(math.Round(float64(diff)*0.5))
	ox, oy := 0, 0
	if w < h {
		ox = before
	} else {
		oy = before
	}
	src := make([]float32, side*side*3) // zeros: the padding
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.RGBA)
			i := ((y+oy)*side + x + ox) * 3
			src[i], src[i+1], src[i+2] = float32(c.R), float32(c.G), float32(c.B)
		}
	}
	return resizeBilinear(src, side, side, Size, Size)
}

// resizeBilinear is TensorFlow.js's ResizeBilinear kernel with
// alignCorners and halfPixelCenters false, on an [ih, iw, 3] image: output
// pixel (y, x) samples the input at (y·ih/oh, x·iw/ow), interpolating
// between the pixel below and the next (clamped at the edge).
func resizeBilinear(src []float32, ih, iw, oh, ow int) []float32 {
	if ih == oh && iw == ow {
		return src
	}
	dst := make([]float32, oh*ow*3)
	ry, rx := float64(ih)/float64(oh), float64(iw)/float64(ow)
	for y := 0; y < oh; y++ {
		fy := ry * float64(y)
		y0 := max(0, int(math.Floor(fy)))
		y1 := min(ih-1, int(math.Ceil(fy)))
		dy := fy - float64(y0)
		for x := 0; x < ow; x++ {
			fx := rx * float64(x)
			x0 := max(0, int(math.Floor(fx)))
			x1 := min(iw-1, int(math.Ceil(fx)))
			dx := fx - float64(x0)
			for c := 0; c < 3; c++ {
				tl := float64(src[(y0*iw+x0)*3+c])
				tr := float64(src[(y0*iw+x1)*3+c])
				bl := float64(src[(y1*iw+x0)*3+c])
				br := float64(src[(y1*iw+x1)*3+c])
				top := tl + (tr-tl)*dx
				bottom := bl + (br-bl)*dx
				dst[(y*ow+x)*3+c] = float32(top + (bottom-top)*dy)
			}
		}
	}
	return dst
}
