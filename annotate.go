package agegender

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"github.com/agegender/agegender/imageio"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// percent writes a probability as a whole percentage, never rounding one
// short of certainty up to 100%.
func percent(p float32) string {
	if p > 0.99 && p < 1 {
		return ">99%"
	}
	return fmt.Sprintf("%.0f%%", 100*p)
}

// Annotate returns a copy of img with each face's box drawn and labelled
// with its index, gender and age group, for people to check results. The
// faces' boxes are in img's pixels, as Analyze gives them (for
// AnalyzeReader's, see Result.Annotate).
func Annotate(img image.Image, faces []Face) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	src := img
	if _, ok := img.(imageio.Reducer); ok {
		// A large JPEG decoded in pieces: decode it whole once, rather
		// than through At for every pixel.
		src = imageio.ToRGBA(img)
	}
	draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
	// Lines thick enough to see on large photos, thin on small ones; labels
	// as large as the photo needs to read them at its full view.
	th := max(2, min(b.Dx(), b.Dy())/300)
	k := max(1, min(b.Dx(), b.Dy())/600)
	for _, f := range faces {
		r := f.Box.Sub(b.Min)
		c := boxColor(f.Gender)
		fillRect(dst, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+th), c)
		fillRect(dst, image.Rect(r.Min.X, r.Max.Y-th, r.Max.X, r.Max.Y), c)
		fillRect(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+th, r.Max.Y), c)
		fillRect(dst, image.Rect(r.Max.X-th, r.Min.Y, r.Max.X, r.Max.Y), c)
		label := fmt.Sprintf("#%d %s %s %s", f.Index, f.Gender, percent(f.GenderProb), f.AgeGroup)
		if f.HasAge() {
			// basicfont has ASCII only: no ±.
			label += fmt.Sprintf(" %.0f+-%.0fy", f.Age, f.AgeStd)
		}
		face := basicfont.Face7x13
		w := font.MeasureString(face, label).Ceil() + 4
		h := face.Metrics().Height.Ceil() + 2
		tag := image.NewRGBA(image.Rect(0, 0, w, h))
		fillRect(tag, tag.Rect, c)
		d := font.Drawer{Dst: tag, Src: image.White, Face: face, Dot: fixed.P(2, face.Metrics().Ascent.Ceil()+1)}
		d.DrawString(label)
		// The 13-pixel font enlarged with the photo (×5 on a 12 MP one)
		// but never beyond a sixth of the face's box, so that labels of
		// small faces in a big photo do not cover them; above the box, or
		// inside its top edge when there is no room.
		kf := max(1, min(k, r.Dy()/(6*h)))
		w, h = kf*w, kf*h
		y := r.Min.Y - h
		if y < 0 {
			y = max(0, r.Min.Y)
		}
		x := max(0, r.Min.X)
		xdraw.NearestNeighbor.Scale(dst, image.Rect(x, y, x+w, y+h), tag, tag.Rect, draw.Src, nil)
	}
	return dst
}

// boxColor tells the genders apart at a glance.
func boxColor(g Gender) color.RGBA {
	if g == Female {
		return color.RGBA{200, 30, 120, 255}
	}
	return color.RGBA{20, 100, 220, 255}
}

func fillRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(dst, r.Intersect(dst.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}
