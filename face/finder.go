package face

import (
	"fmt"
	"image"
	"slices"
	"strings"

	"github.com/gomlx/compute"
)

// Detectors names the face detectors NewFinder knows, the default first.
// BlazeFace is the default: on the photo benchmark (bench/photos,
// BENCHMARKS.md) it finds more faces with fewer false positives than the
// pigo cascade, gives landmarks for alignment and turned faces, and is
// deterministic.
var Detectors = []string{"blazeface", "pigo"}

// Finder is a face detector chosen by name with its options fixed, as the
// agegender library and command use it. It is safe for concurrent use.
type Finder struct {
	name  string
	pigo  *Detector
	popt  Options
	blaze *BlazeFace
	bopt  BlazeOptions
	min   float32
}

// NewFinder returns the detector called name ("blazeface" or "pigo"; ""
// means "blazeface"). minScore is the smallest Face.Score (0–1) reported;
// 0 means the detector's own default (DefaultBlazeMinScore for BlazeFace,
// pigo's cascade threshold pigo.MinScore). pigo tunes the pigo cascade;
// BlazeFace reads only its MaxFaces and Tiles. backend runs BlazeFace's
// network and is not needed by pigo.
func NewFinder(name string, backend compute.Backend, minScore float32, pigo Options) (*Finder, error) {
	if err := CheckFinder(name, minScore, pigo); err != nil {
		return nil, err
	}
	f := &Finder{name: name, min: minScore}
	switch name {
	case "", "blazeface":
		f.name = "blazeface"
		b, err := NewBlazeFace(backend)
		if err != nil {
			return nil, err
		}
		f.blaze, f.bopt = b, BlazeOptions{MinScore: minScore, MaxFaces: pigo.MaxFaces, Tiles: pigo.Tiles}
	case "pigo":
		d, err := NewDetector()
		if err != nil {
			return nil, err
		}
		f.pigo, f.popt = d, pigo
	}
	return f, nil
}

// CheckFinder returns the error NewFinder would return for these
// arguments before loading anything: an unknown detector name, a minimum
// score outside [0, 1), or invalid pigo Options. A program checks them
// with it before slower set-up (opening a backend).
func CheckFinder(name string, minScore float32, pigo Options) error {
	if name != "" && !slices.Contains(Detectors, name) {
		return fmt.Errorf("face: unknown detector %q; use one of %s", name, strings.Join(Detectors, ", "))
	}
	if !(minScore >= 0 && minScore < 1) {
		return fmt.Errorf("face: minimum score %g is out of range: use a value in [0, 1), 0 for the detector's default (scores are probabilities below 1)", minScore)
	}
	// pigo is checked whichever detector runs, so that a mistake in it is
	// reported when it is made, not when someone switches detectors.
	if _, err := pigo.withDefaults(); err != nil {
		return err
	}
	if name == "" || name == "blazeface" {
		if _, err := (BlazeOptions{MinScore: minScore, MaxFaces: pigo.MaxFaces, Tiles: pigo.Tiles}).withDefaults(); err != nil {
			return err
		}
	}
	return nil
}

// Load loads the detector's networks now rather than at the first Find
// (see BlazeFace.Load), for a program that will detect and can do it on
// another goroutine meanwhile; pigo's cascade is loaded by NewFinder.
func (f *Finder) Load() error {
	if f.blaze != nil {
		return f.blaze.Load()
	}
	return nil
}

// Name is the detector's name, as NewFinder accepts it.
func (f *Finder) Name() string { return f.name }

// Find detects the faces of img, best first, none below the minimum score.
func (f *Finder) Find(img image.Image) ([]Face, error) {
	if f.blaze != nil {
		return f.blaze.Detect(img, f.bopt) // applies the minimum itself
	}
	faces, err := f.pigo.Detect(img, f.popt)
	if err != nil || f.min == 0 {
		return faces, err
	}
	kept := faces[:0]
	for _, fc := range faces {
		if fc.Score >= f.min {
			kept = append(kept, fc)
		}
	}
	return kept, nil
}
