package imageio

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/agegender/agegender/face"
)

func encoded(t testing.TB) (jpg, pngb []byte) {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(3, 3, color.White)
	var a, b bytes.Buffer
	jpeg.Encode(&a, img, nil)
	png.Encode(&b, img)
	return a.Bytes(), b.Bytes()
}

// FuzzDecodeAndDetect feeds arbitrary bytes through the whole photo
// pipeline: decode (every format, EXIF orientation, size limits,
// downscaling, transparency), then face
// detection and alignment. It must end in an image and faces inside it, or
// an error — never a panic, a hang or a huge allocation.
func FuzzDecodeAndDetect(f *testing.F) {
	j, p := encoded(f)
	f.Add(j)
	f.Add(p)
	f.Add(j[:len(j)/2])
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	f.Add([]byte("BM"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	// A PNG header that declares a 100000×100000 image.
	bomb := append([]byte(nil), p[:33]...)
	bomb[16], bomb[17], bomb[18], bomb[19] = 0, 1, 0x86, 0xa0
	bomb[20], bomb[21], bomb[22], bomb[23] = 0, 1, 0x86, 0xa0
	f.Add(bomb)
	det, err := face.NewDetector()
	if err != nil {
		f.Fatal(err)
	}
	lim := Limits{MaxPixels: 4 << 20, MaxBytes: 1 << 20}
	// Downscaling: anything up to 16 MiB of decoded pixels is shrunk to
	// at most 4096 pixels.
	small := Limits{MaxPixels: 4096, MaxBytes: 1 << 20, MaxDecodeBytes: 16 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		if img, info, err := DecodeInfo(bytes.NewReader(data), small); err == nil {
			b := img.Bounds()
			if px := int64(b.Dx()) * int64(b.Dy()); px > small.MaxPixels || px == 0 || b.Dx() > info.Width || b.Dy() > info.Height {
				t.Fatalf("downscaled to %v (photo %dx%d), limit %d pixels", b, info.Width, info.Height, small.MaxPixels)
			}
		}
		img, _, err := Decode(bytes.NewReader(data), lim)
		if err != nil {
			return
		}
		b := img.Bounds()
		if int64(b.Dx())*int64(b.Dy()) > lim.MaxPixels {
			t.Fatalf("decoded %v beyond the pixel limit", b)
		}
		faces, err := det.Detect(img, face.DefaultOptions())
		if err != nil {
			return
		}
		for _, fc := range faces {
			if a := face.Align(img, fc, 32); a.Bounds().Dx() != 32 {
				t.Fatalf("aligned crop %v", a.Bounds())
			}
		}
	})
}
