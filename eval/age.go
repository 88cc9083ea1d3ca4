package eval

import "math"

// AgeErrors are the errors of age estimates in years.
type AgeErrors struct {
	N int `json:"n"`
	// MAE is the mean absolute error in years.
	MAE float64 `json:"mae"`
	// CS5 is the cumulative score at 5 years: the fraction of estimates
	// within 5 years of the true age (Geng et al. 2007).
	CS5 float64 `json:"cs5"`
}

// AgeError computes MAE and CS@5 of estimates against true ages in years;
// pairs whose true age is negative (unknown) are left out.
func AgeError(estimates []float64, ages []int) AgeErrors {
	var e AgeErrors
	var sum float64
	within := 0
	for i, est := range estimates {
		if ages[i] < 0 {
			continue
		}
		d := math.Abs(est - float64(ages[i]))
		sum += d
		if d <= 5 {
			within++
		}
		e.N++
	}
	if e.N > 0 {
		e.MAE = sum / float64(e.N)
		e.CS5 = float64(within) / float64(e.N)
	}
	return e
}
