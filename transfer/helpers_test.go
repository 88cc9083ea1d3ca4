package transfer

import (
	"github.com/agegender/agegender/internal/datatest"
	"path/filepath"
	"testing"
)

// sharedDir returns ../shared, skipping the test when the pretrained
// models or the UTKFace images are absent.
func sharedDir(t *testing.T) string {
	t.Helper()
	datatest.Shared(t, "models/tfjs")
	datatest.SharedDir(t, "utkface/images")
	return filepath.Dir(datatest.Shared(t, "models"))
}
