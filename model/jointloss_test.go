package model_test

import (
	"math"
	"testing"

	"github.com/agegender/agegender/model"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestJointLossMasksAndWeighs: a face without a gender label adds no
// gender term and one without an age adds no age term; the gender term is
// the cross-entropy of the gender logits times genderWeight, and the
// weight leaves the age term alone.
func TestJointLossMasksAndWeighs(t *testing.T) {
	be := goBackend(t)
	logits := make([]float32, 2*model.JointClasses)
	logits[0], logits[1] = 2, 0 // face 0: gender logits (m, f)
	for y := range model.AgeBins {
		logits[model.JointClasses+2+y] = float32(-math.Abs(float64(y-30)) / 5) // face 1: age peaked at 30
	}
	loss := func(gw float64, labels []int32) float64 {
		return float64(tensors.ToScalar[float32](MustExecOnce(be, func(l, x *Node) *Node {
			return model.JointLoss(3, 0.05, gw)([]*Node{l}, []*Node{x})
		}, tensors.FromFlatDataAndDimensions(labels, 2, 2), tensors.FromFlatDataAndDimensions(logits, 2, model.JointClasses))))
	}
	genderOnly := []int32{1, -1, -1, -1} // face 0 female, nothing else known
	ce := math.Log(1 + math.Exp(2))      // −log softmax(2, 0)[1]
	if got := loss(1, genderOnly); math.Abs(got-ce) > 1e-5 {
		t.Errorf("gender-only loss %g, want the cross-entropy %g", got, ce)
	}
	if got := loss(2, genderOnly); math.Abs(got-2*ce) > 1e-5 {
		t.Errorf("gender weight 2: loss %g, want %g", got, 2*ce)
	}
	ageOnly := []int32{-1, -1, -1, 30}
	a1, a2 := loss(1, ageOnly), loss(2, ageOnly)
	if a1 <= 0 || math.Abs(a1-a2) > 1e-6 {
		t.Errorf("age-only loss %g with gender weight 1, %g with 2: want the same positive value", a1, a2)
	}
}
