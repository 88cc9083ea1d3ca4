package train

import (
	"fmt"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/model"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// validate returns centre-crop accuracy on set (0 if it is empty); for a
// joint net, the mean of the gender accuracy and the exact age-group
// accuracy (each over the examples that have that label).
func validate(exec *mlx.Exec, set Examples, opts Options) (float64, error) {
	if set == nil || set.Len() == 0 {
		return 0, nil
	}
	dims := exampleDims(set, opts)
	per := 1
	for _, d := range dims {
		per *= d
	}
	b := 64
	if opts.ValBatch > 0 {
		b = opts.ValBatch
	}
	correct := 0
	var jc [2]int // joint: correct gender, correct age group
	var jn [2]int // joint: examples with each label
	jl, joint := set.(JointLabeled)
	joint = joint && opts.Model.Heads == model.HeadsGenderAge
	buf := make([]float32, b*per)
	for start := 0; start < set.Len(); start += b {
		k := min(b, set.Len()-start)
		clear(buf)
		for j := 0; j < k; j++ {
			set.Center(start+j, buf[j*per:(j+1)*per])
		}
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(buf, append([]int{b}, dims...)...))
		if err != nil {
			return 0, fmt.Errorf("train: validation: %w", err)
		}
		pred := tensors.MustCopyFlatData[int32](res[0])
		res[0].FinalizeAll()
		for j := 0; j < k; j++ {
			if joint {
				g, a := jl.Labels(start + j)
				if g >= 0 {
					jn[0]++
					if int(pred[2*j]) == g {
						jc[0]++
					}
				}
				if a >= 0 {
					jn[1]++
					if int(pred[2*j+1]) == int(data.AgeGroupOf(a)) {
						jc[1]++
					}
				}
				continue
			}
			if int(pred[j]) == set.Label(start+j) {
				correct++
			}
		}
	}
	if joint {
		return (float64(jc[0])/float64(max(jn[0], 1)) + float64(jc[1])/float64(max(jn[1], 1))) / 2, nil
	}
	return float64(correct) / float64(set.Len()), nil
}
