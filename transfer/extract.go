// Package transfer uses pretrained face networks, imported from
// TensorFlow.js with package interop/tfjs, as frozen feature extractors for
// agegender: every face crop is run once through the backbone, the
// embeddings are cached on disk (float16), and a small fully connected head
// (512-512-N, ReLU, dropout 0.5, Adam) is trained on them for the gender
// or the 8-group age task.
//
// Two backbones are provided:
//
//   - [MobileFaceNet]: a face-recognition network (112×112 input, pixels
//     scaled to [-1, 1]) whose output is an L2-normalised 192-d identity
//     embedding. Identity features carry age and gender only indirectly.
//   - [FaceRes]: HSE FaceRec's MobileNet age/gender network (224×224
//     input, pixels on the 0..255 scale); its 256-d "feats" layer, shared
//     by its own gender and age heads, is the feature. [Baseline] reports
//     what its own heads predict, with no training at all.
//
// Images come from data/prep: each file is decoded and resized once to the
// backbone's input size (UTKFace's aligned-and-cropped faces fill the frame,
// so no further crop is taken).
package transfer

import (
	"fmt"

	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/interop/tfjs"
	"github.com/agegender/agegender/model"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Backbone describes a pretrained graph model used as a feature extractor.
type Backbone struct {
	Name    string // short name, used in cache file names
	File    string // model.json file name inside the models directory
	Input   string // placeholder name
	Size    int    // input side in pixels (square NHWC RGB input)
	Feature string // node whose output is the feature vector
	Dim     int    // feature length
	// A pixel value p on the 0..255 scale is fed as p*Scale + Offset.
	Scale, Offset float32
}

// MobileFaceNet is the 192-d face-recognition embedding of
// mobilefacenet.json (sirius-ai's MobileFaceNet_TF, converted by
// vladmandic), before its L2 normalisation, as model.ImportTrunk reads it.
// It was trained on (p-127.5)/128-style inputs; p/127.5-1 is used here.
var MobileFaceNet = Backbone{Name: "mobilefacenet", File: "mobilefacenet.json", Input: "img_inputs",
	Size: 112, Feature: "MobileFaceNet/Logits/SpatialSqueeze", Dim: 192, Scale: 1 / 127.5, Offset: -1}

// FaceRes is the 1024-d global average pool of faceres.json (HSE
// FaceRec's MobileNet age/gender model), the input of its own 256-d
// "feats" layer, as model.ImportTrunk reads it. Its input is on the 0..255
// scale, which is what vladmandic/human feeds it and what gives its gender
// head sensible answers on UTKFace (see [Baseline]).
var FaceRes = Backbone{Name: "faceres", File: "faceres.json", Input: "input_1",
	Size: 224, Feature: "global_pooling/Mean", Dim: 1024, Scale: 1, Offset: 0}

// Backbones lists the available backbones by name.
var Backbones = map[string]Backbone{MobileFaceNet.Name: MobileFaceNet, FaceRes.Name: FaceRes}

// ExtractBatch is the number of images run through a backbone at once.
const ExtractBatch = 4

// Extractor runs a backbone on face images.
type Extractor struct {
	Backbone Backbone
	Model    *tfjs.Graph
	outputs  []string
	exec     *graph.Exec
}

// NewExtractor loads the backbone's model (the trunk named bb.Name, by
// model.ImportTrunk) from modelsDir and prepares it to compute outputs
// (by default the backbone's Feature) on backend.
func NewExtractor(backend compute.Backend, modelsDir string, bb Backbone, outputs ...string) (*Extractor, error) {
	_, _, m, err := model.ImportTrunk(modelsDir, bb.Name)
	if err != nil {
		return nil, err
	}
	return newExtractor(backend, m, bb, outputs...)
}

// newExtractor is [NewExtractor] on a trunk graph already loaded.
func newExtractor(backend compute.Backend, m *tfjs.Graph, bb Backbone, outputs ...string) (*Extractor, error) {
	if len(outputs) == 0 {
		outputs = []string{bb.Feature}
	}
	e, err := m.NewExec(backend, bb.Input, outputs...)
	if err != nil {
		return nil, err
	}
	return &Extractor{Backbone: bb, Model: m, outputs: outputs, exec: e}, nil
}

// Config returns the prep configuration that produces this backbone's
// input: images resized to Size×Size and used whole.
func (bb Backbone) Config() prep.Spec { return prep.Spec{Resize: bb.Size, Crop: bb.Size} }

// Run computes the extractor's outputs for images given as packed RGB
// bytes of Size×Size (the format of prep.Cache.Pixels), in batches of
// ExtractBatch. It returns, per output, one vector per image.
func (e *Extractor) Run(images [][]uint8) ([][][]float32, error) {
	cfg := e.Backbone.Config()
	per := cfg.CropLen()
	var res [][][]float32
	buf := make([]float32, ExtractBatch*per)
	for start := 0; start < len(images); start += ExtractBatch {
		n := min(ExtractBatch, len(images)-start)
		for i := range n {
			pix := images[start+i]
			if len(pix) != per {
				return nil, fmt.Errorf("transfer: image %d has %d bytes, want %d (%d×%d RGB)", start+i, len(pix), per, cfg.Resize, cfg.Resize)
			}
			dst := buf[i*per : (i+1)*per]
			prep.CenterCropPixels(pix, cfg, dst)
			for j := range dst {
				dst[j] = dst[j]*e.Backbone.Scale + e.Backbone.Offset
			}
		}
		// Always run full batches, so that only one graph is compiled.
		for i := n * per; i < len(buf); i++ {
			buf[i] = 0
		}
		x := tensors.FromFlatDataAndDimensions(buf, ExtractBatch, cfg.Crop, cfg.Crop, 3)
		outs, err := e.exec.Call(x)
		// Free the input's and outputs' backend buffers now: they live in
		// C memory (ONNX Runtime), which Go's collector does not see, and
		// left to finalizers they grew by about 1 MB per face.
		x.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("transfer: %s: %w", e.Backbone.Name, err)
		}
		if res == nil {
			res = make([][][]float32, len(outs))
		}
		for k, o := range outs {
			flat := tensors.MustCopyFlatData[float32](o)
			o.FinalizeAll()
			d := len(flat) / ExtractBatch
			for i := range n {
				res[k] = append(res[k], flat[i*d:(i+1)*d:(i+1)*d])
			}
		}
	}
	return res, nil
}

// Features are the backbone features of a list of samples.
type Features struct {
	Index []int       // position in the sample list of each row; undecodable images are absent
	Rows  [][]float32 // one feature vector per decoded image
}
