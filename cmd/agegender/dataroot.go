package main

import "github.com/agegender/agegender/internal/dataroot"

// dataPath is rel inside the data folder ($AGEGENDER_DATA, default
// ../shared/data), for flag defaults.
func dataPath(rel string) string { return dataroot.Path(rel) }

// modelsPath is rel inside the pretrained-models folder beside the data
// folder (../shared/models by default), for flag defaults.
func modelsPath(rel string) string { return dataroot.Models(rel) }
