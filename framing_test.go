package agegender

import (
	"strings"
	"testing"

	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/face"
	"github.com/agegender/agegender/model"
)

// TestFramingFromSpec: faces are aligned to the framing stored in the
// model's preprocessing spec; UTKFace's when none is stored; two nets must
// agree, and an unknown framing is refused by name.
func TestFramingFromSpec(t *testing.T) {
	net := func(f prep.Framing) *model.Predictor {
		return &model.Predictor{Info: model.Info{Spec: prep.Spec{Framing: f}}}
	}
	if fr, err := framingOf(net(""), nil); err != nil || fr.Name != face.UTKFace.Name {
		t.Errorf("no framing stored: %v, %v; want UTKFace's", fr.Name, err)
	}
	if fr, err := framingOf(net(prep.FramingArcFace)); err != nil || fr.Name != face.ArcFace.Name {
		t.Errorf("arcface: %v, %v", fr.Name, err)
	}
	if _, err := framingOf(net(prep.FramingUTKFace), net(prep.FramingArcFace)); err == nil {
		t.Error("nets with different framings accepted together")
	}
	if _, err := framingOf(net("passport")); err == nil || !strings.Contains(err.Error(), "passport") {
		t.Errorf("unknown framing: %v, want an error naming it", err)
	}
}
