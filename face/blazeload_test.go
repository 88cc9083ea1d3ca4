package face

import (
	"reflect"
	"testing"
)

// Load, alone or racing a Detect, gives the faces a detector that loads at
// its first Detect finds; a second Load is free and returns the same.
func TestBlazeFaceLoad(t *testing.T) {
	img := loadImage(t, "../testdata/face.jpg")
	want, err := newTestBlazeFace(t).Detect(img, BlazeOptions{})
	if err != nil || len(want) == 0 {
		t.Fatalf("fresh detector: %d faces, %v", len(want), err)
	}
	d := newTestBlazeFace(t)
	loaded := make(chan error, 1)
	go func() { loaded <- d.Load() }()
	got, err := d.Detect(img, BlazeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after Load: %+v, a fresh detector %+v", got, want)
	}
	if err := (&BlazeFace{}).Load(); err == nil {
		t.Error("Load on a zero BlazeFace gave no error")
	}
}
