// Package dataroot says where agegender's data sets and pretrained models
// live, from one setting.
//
// AGEGENDER_DATA names the data folder (default ../shared/data, the shared
// folder next to the repository): UTKFace in utkface/images, Adience in
// adience/ (folds/, caffe/). The pretrained TF.js networks are in models/
// beside it (../shared/models/tfjs by default). Commands use these paths as
// their flag defaults, so a relative AGEGENDER_DATA is taken from the
// working directory; tests resolve it from the repository root instead (see
// internal/datatest), which is the same folder when commands are run as the
// README shows.
package dataroot

import (
	"os"
	"path/filepath"
)

// Env is the environment variable that names the data folder.
const Env = "AGEGENDER_DATA"

// Default is the data folder when Env is unset or empty.
const Default = "../shared/data"

// Dir returns the data folder: $AGEGENDER_DATA, or Default.
func Dir() string {
	if d := os.Getenv(Env); d != "" {
		return filepath.Clean(d)
	}
	return Default
}

// Path returns rel (slash-separated, such as "utkface/images") inside the
// data folder.
func Path(rel string) string {
	return filepath.Join(Dir(), filepath.FromSlash(rel))
}

// Models returns rel (such as "tfjs") inside the models folder that sits
// beside the data folder.
func Models(rel string) string {
	return filepath.Join(filepath.Dir(Dir()), "models", filepath.FromSlash(rel))
}
