package agegender_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/agegender/agegender"
)

// Example analyses a photo with the built-in models. Each face comes with
// its box in the photo, the most likely gender and age group, and the
// probabilities behind them.
func Example() {
	a, err := agegender.New(agegender.Options{})
	if err != nil {
		log.Fatal(err) // e.g. a binary built without the built-in models
	}
	defer a.Close()
	f, err := os.Open("photo.jpg")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := a.AnalyzeReader(ctx, f)
	switch {
	case errors.Is(err, agegender.ErrNotImage), errors.Is(err, agegender.ErrUnsupportedFormat):
		log.Fatal("not a photo we can read: ", err)
	case err != nil:
		log.Fatal(err)
	}
	for _, f := range res.Faces {
		fmt.Printf("face %d at %v: %v (%.0f%%), age %v (%.0f%%)\n",
			f.Index, f.Box, f.Gender, 100*f.GenderProb, f.AgeGroup, 100*f.AgeProb())
	}
}
