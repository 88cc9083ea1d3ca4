package agegender_test

import (
	"fmt"
	"log"
	"os"

	"github.com/agegender/agegender"
)

// Example analyses a photo with the built-in models. Each face comes with
// its box in the photo, the most likely gender and age group, and the
// probabilities behind them.
func Example() {
	a, err := agegender.New(agegender.Options{TenCrop: true})
	if err != nil {
		log.Fatal(err) // e.g. a binary built without the built-in models
	}
	defer a.Close()
	b, err := os.ReadFile("photo.jpg")
	if err != nil {
		log.Fatal(err)
	}
	faces, err := a.AnalyzeBytes(b)
	if err != nil {
		log.Fatal(err) // not an image, or too large
	}
	for _, f := range faces {
		fmt.Printf("face %d at %v: %s (%.0f%%), age %s (%.0f%%)\n",
			f.Index, f.Box, f.Gender, 100*f.GenderProb, f.AgeGroup, 100*f.AgeProb())
	}
}
