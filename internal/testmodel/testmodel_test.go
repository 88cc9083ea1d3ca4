package testmodel

import (
	"github.com/agegender/agegender/model"
	"testing"
)

func TestFiles(t *testing.T) {
	g, a, err := Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{g, a} {
		m, err := model.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(p, m.NumParams())
	}
}
