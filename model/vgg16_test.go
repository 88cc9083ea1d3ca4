package model_test

import (
	"fmt"
	"testing"

	"github.com/agegender/agegender/model"
)

// vgg16Want returns VGG-16's variable shapes for an input whose last
// feature map is side×side×512.
func vgg16Want(side, classes int) map[string][]int {
	want := map[string][]int{}
	cin := 3
	for i, block := range model.VGG16Blocks {
		for j, out := range block {
			name := fmt.Sprintf("/net/conv%d_%d/", i+1, j+1)
			want[name+"weights"] = []int{3, 3, cin, out}
			want[name+"biases"] = []int{out}
			cin = out
		}
	}
	want["/net/fc6/weights"] = []int{side * side * 512, 4096}
	want["/net/fc6/biases"] = []int{4096}
	want["/net/fc7/weights"] = []int{4096, 4096}
	want["/net/fc7/biases"] = []int{4096}
	want["/net/fc8/weights"] = []int{4096, classes}
	want["/net/fc8/biases"] = []int{classes}
	return want
}

func checkShapes(t *testing.T, got, want map[string][]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d variables, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: shape %v, want %v", k, got[k], w)
		}
	}
}

// TestVGG16Small runs VGG-16 forward at its smallest input, 32×32, where
// the five pools leave a 1×1×512 map: all 16 layers, with fc6 reduced to
// 512 inputs so the test stays light.
func TestVGG16Small(t *testing.T) {
	got := weightShapes(t, model.Config{Net: "vgg16", Classes: 2, Input: 32, Seed: 1})
	checkShapes(t, got, vgg16Want(1, 2))
}

// TestVGG16At224 builds the full VGG-Face-sized network (138 M parameters,
// 553 MB of float32 weights) and runs one image through it: about 10 s and
// 1.8 GB of memory on the pure-Go backend, so it is skipped with -short.
func TestVGG16At224(t *testing.T) {
	if testing.Short() {
		t.Skip("VGG-16 at 224×224 takes seconds and 1.8 GB; skipped with -short")
	}
	got := weightShapes(t, model.Config{Net: "vgg16", Classes: 2622, Input: 224, Seed: 1})
	checkShapes(t, got, vgg16Want(7, 2622))
	n := 0
	for _, d := range got {
		p := 1
		for _, v := range d {
			p *= v
		}
		n += p
	}
	if n != 145_002_878 {
		t.Errorf("%d parameters, want 145,002,878 (VGG-Face with 2622 identities)", n)
	}
}

func TestVGG16RejectsTinyInput(t *testing.T) {
	if err := (model.Config{Net: "vgg16", Classes: 2, Input: 31}).Validate(); err == nil {
		t.Error("input 31 accepted; VGG-16 needs at least 32")
	}
}
