package agegender

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"strconv"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/face"
)

// Gender is a face's gender class.
type Gender int

// The gender classes, in the order of the networks' outputs.
const (
	Male Gender = iota
	Female
)

// String returns "m" or "f", as in JSON and the CLI's table.
func (g Gender) String() string {
	switch g {
	case Male:
		return "m"
	case Female:
		return "f"
	}
	return "Gender(" + strconv.Itoa(int(g)) + ")"
}

// MarshalText writes String's form; it fails for a value other than Male
// or Female.
func (g Gender) MarshalText() ([]byte, error) {
	if g != Male && g != Female {
		return nil, fmt.Errorf("agegender: %v is no gender class", g)
	}
	return []byte(g.String()), nil
}

// UnmarshalText reads "m" or "f".
func (g *Gender) UnmarshalText(b []byte) error {
	switch string(b) {
	case "m":
		*g = Male
	case "f":
		*g = Female
	default:
		return fmt.Errorf("agegender: gender %q: want \"m\" or \"f\"", b)
	}
	return nil
}

// AgeGroup is one of the 8 age groups of the Adience benchmark, in age
// order; it indexes [AgeProbs].
type AgeGroup int

// The age groups. Adience leaves gaps between them (no group for 3, 7,
// 13–14, … years); see data.AgeGroupOf for how an age in years maps to one.
const (
	Age0To2 AgeGroup = iota
	Age4To6
	Age8To12
	Age15To20
	Age25To32
	Age38To43
	Age48To53
	Age60To100
)

// NumAgeGroups is the number of age groups.
const NumAgeGroups = data.NumAgeGroups

// String returns the group's span in years, like "25-32", as in JSON.
func (g AgeGroup) String() string {
	if g < 0 || g >= NumAgeGroups {
		return "AgeGroup(" + strconv.Itoa(int(g)) + ")"
	}
	return data.AgeGroupNames[g]
}

// Years returns the group's inclusive span in years, like 25 and 32.
func (g AgeGroup) Years() (lo, hi int) { return data.AgeGroup(g).Bounds() }

// MarshalText writes String's form; it fails for a value out of range.
func (g AgeGroup) MarshalText() ([]byte, error) {
	if g < 0 || g >= NumAgeGroups {
		return nil, fmt.Errorf("agegender: %v is no age group", g)
	}
	return []byte(g.String()), nil
}

// UnmarshalText reads a group's span, like "25-32".
func (g *AgeGroup) UnmarshalText(b []byte) error {
	v, err := data.ParseAgeGroup(string(b))
	if err != nil {
		return fmt.Errorf("agegender: %w", err)
	}
	*g = AgeGroup(v)
	return nil
}

// AgeProbs is the probability of every age group, indexed by AgeGroup. In
// JSON it is an object keyed by the groups' names, in age order:
// {"0-2": p, "4-6": p, …, "60-100": p}.
type AgeProbs [NumAgeGroups]float32

// MarshalJSON writes the groups in age order.
func (p AgeProbs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for g, v := range p {
		if g > 0 {
			b.WriteByte(',')
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%q:%s", AgeGroup(g), vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the object MarshalJSON writes; missing groups are 0.
func (p *AgeProbs) UnmarshalJSON(b []byte) error {
	var m map[string]float32
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*p = AgeProbs{}
	for k, v := range m {
		var g AgeGroup
		if err := g.UnmarshalText([]byte(k)); err != nil {
			return err
		}
		p[g] = v
	}
	return nil
}

// Face is one analysed face. Its JSON form is the one every part of the
// project writes for a face (the library, the CLI's --json lines and the
// HTTP service's answers):
//
//	{"face": 0,                        Index
//	 "box": [x, y, width, height],      Box, in pixels
//	 "gender": "m" | "f",               Gender
//	 "gender_prob": 0.98,               GenderProb, 0–1
//	 "age_group": "25-32",              AgeGroup
//	 "age_probs": {"0-2": p, …},        AgeProbs, all 8 groups in age order
//	 "age": 27.3, "age_std": 4.1,       Age, AgeStd in years, to 0.1; absent
//	                                    from models without years (HasAge)
//	 "detection_score": 0.93,           DetectionScore, 0–1; absent for
//	                                    AnalyzeCrop (no detector ran)
//	 "landmarks": [[x, y], …]}          Landmarks, to 0.1 pixel; absent
//	                                    when the detector gives none
type Face struct {
	// Index numbers the faces of one image from 0, most confident
	// detection first.
	Index int
	// Box is the face square in pixels, clipped to the image (so not
	// square for a face cut by the frame). For AnalyzeCrop it is the whole
	// image; for AnalyzeReader it is in the photo's pixels even when the
	// photo was downscaled for analysis.
	Box image.Rectangle
	// Gender is the most likely gender and GenderProb its probability.
	Gender     Gender
	GenderProb float32
	// AgeGroup is the most likely age group and AgeProbs the probability
	// of every group.
	AgeGroup AgeGroup
	AgeProbs AgeProbs
	// Age is the expected age in years and AgeStd the standard deviation
	// of the model's age distribution, in years: a measure of how sure it
	// is. Both are 0 when the model predicts age groups only (HasAge).
	Age, AgeStd float64
	// DetectionScore is the face detector's confidence on a 0–1 scale
	// (see face.Face.Score); 0 for AnalyzeCrop.
	DetectionScore float32
	// Landmarks are the detector's keypoints in the same pixels as Box:
	// right eye, left eye, nose tip, mouth, right ear, left ear (the
	// person's sides; see face.RightEye). Nil for pigo and AnalyzeCrop.
	Landmarks []face.Point
}

// HasAge reports whether the face carries an age in years.
func (f Face) HasAge() bool { return f.Age != 0 || f.AgeStd != 0 }

// AgeProb is the probability of the chosen age group.
func (f Face) AgeProb() float32 { return f.AgeProbs[f.AgeGroup] }

// faceJSON is the JSON form of a Face.
type faceJSON struct {
	Index          int          `json:"face"`
	Box            [4]int       `json:"box"`
	Gender         Gender       `json:"gender"`
	GenderProb     float32      `json:"gender_prob"`
	AgeGroup       AgeGroup     `json:"age_group"`
	AgeProbs       AgeProbs     `json:"age_probs"`
	Age            *float64     `json:"age,omitempty"`
	AgeStd         *float64     `json:"age_std,omitempty"`
	DetectionScore float32      `json:"detection_score,omitempty"`
	Landmarks      [][2]float64 `json:"landmarks,omitempty"`
}

// MarshalJSON writes f in the form documented on Face.
func (f Face) MarshalJSON() ([]byte, error) {
	j := faceJSON{
		Index: f.Index, Box: [4]int{f.Box.Min.X, f.Box.Min.Y, f.Box.Dx(), f.Box.Dy()},
		Gender: f.Gender, GenderProb: f.GenderProb, AgeGroup: f.AgeGroup, AgeProbs: f.AgeProbs,
		DetectionScore: f.DetectionScore,
	}
	if f.HasAge() {
		j.Age, j.AgeStd = ptr(round1(f.Age)), ptr(round1(f.AgeStd))
	}
	for _, p := range f.Landmarks {
		j.Landmarks = append(j.Landmarks, [2]float64{round1(p.X), round1(p.Y)})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (f *Face) UnmarshalJSON(b []byte) error {
	var j faceJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Face{
		Index: j.Index, Box: image.Rect(j.Box[0], j.Box[1], j.Box[0]+j.Box[2], j.Box[1]+j.Box[3]),
		Gender: j.Gender, GenderProb: j.GenderProb, AgeGroup: j.AgeGroup,
		AgeProbs: j.AgeProbs, DetectionScore: j.DetectionScore,
	}
	if j.Age != nil {
		f.Age = *j.Age
	}
	if j.AgeStd != nil {
		f.AgeStd = *j.AgeStd
	}
	for _, p := range j.Landmarks {
		f.Landmarks = append(f.Landmarks, face.Point{X: p[0], Y: p[1]})
	}
	return nil
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func ptr[T any](v T) *T { return &v }

// Result is the analysis of one encoded photo (see AnalyzeReader). Its JSON
// form is {"width": W, "height": H, "faces": [Face, …]}, with "faces": []
// when there is none: the HTTP service's answer and each line of the CLI's
// --json output add their own fields to it.
type Result struct {
	// Width and Height are the photo's size in pixels, after EXIF
	// orientation.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Faces are the faces found, most confident first, in the photo's
	// Width×Height pixels even when it was downscaled for analysis. Never
	// nil.
	Faces []Face `json:"faces"`
	// Image is the picture analysed: the decoded photo, or a downscaled
	// copy when the photo had more than Limits.MaxPixels pixels. Its type
	// is the decoder's (*image.YCbCr for most JPEGs, *image.RGBA when
	// oriented, downscaled or flattened, …); in a build with
	// libjpeg-turbo (tag libjpeg), a JPEG over 2 megapixels within the
	// limit is an imageio.Reducer that decodes the parts asked for: use
	// imageio.ToRGBA rather than At for all of its pixels.
	Image image.Image `json:"-"`
	// Format is the photo's encoding: "jpeg", "png", "gif", "bmp" or
	// "webp".
	Format string `json:"-"`
}

// Annotate returns r.Image with r.Faces drawn on it (see Annotate): the
// size analysed, so downscaled when the photo was over the pixel limit.
func (r *Result) Annotate() *image.RGBA {
	b := r.Image.Bounds()
	return Annotate(r.Image, scaleFaces(r.Faces, image.Rect(0, 0, r.Width, r.Height), b))
}

// scaleFaces maps faces from the pixels of rectangle from to those of
// rectangle to (the same picture at another size or origin): boxes to
// whole pixels, clipped to to; landmarks as they are.
func scaleFaces(faces []Face, from, to image.Rectangle) []Face {
	if from == to {
		return faces
	}
	sx := float64(to.Dx()) / float64(max(1, from.Dx()))
	sy := float64(to.Dy()) / float64(max(1, from.Dy()))
	out := make([]Face, len(faces))
	for i, f := range faces {
		pt := func(x, y float64) (float64, float64) {
			return float64(to.Min.X) + (x-float64(from.Min.X))*sx, float64(to.Min.Y) + (y-float64(from.Min.Y))*sy
		}
		x0, y0 := pt(float64(f.Box.Min.X), float64(f.Box.Min.Y))
		x1, y1 := pt(float64(f.Box.Max.X), float64(f.Box.Max.Y))
		f.Box = image.Rect(int(math.Round(x0)), int(math.Round(y0)), int(math.Round(x1)), int(math.Round(y1))).Intersect(to)
		if f.Landmarks != nil {
			pts := make([]face.Point, len(f.Landmarks))
			for k, p := range f.Landmarks {
				pts[k].X, pts[k].Y = pt(p.X, p.Y)
			}
			f.Landmarks = pts
		}
		out[i] = f
	}
	return out
}
