// Package eval turns a classifier's predictions into numbers and pictures
// that say how good the classifier is.
//
// The package is label-agnostic: it knows nothing about faces, genders or
// age groups. Callers describe a task by its name, the ordered list of its
// class names and whether those classes have a natural order (age groups
// do, genders do not), and hand over one [Prediction] per example: the
// true class index and the predicted class probabilities.
//
// # Metrics
//
// [Evaluate] computes a [Report]: accuracy, 1-off accuracy for ordered
// classes (a prediction counts as correct when it lands in the true class
// or one of its neighbours, the usual second number reported for the
// Adience age benchmark), the confusion matrix, per-class precision, recall
// and F1, the expected calibration error (ECE) and the mean negative
// log-likelihood (NLL). A Report prints as a readable table (String) and
// marshals to a single snake_case JSON object.
//
// Cross-validated results are summarised as mean ± sample standard
// deviation over folds with [MeanStd] and [FormatMeanStd].
//
// # Test-time augmentation
//
// With over-sampling (for example the classic 10-crop scheme: four corners
// and the centre, plus their mirror images) a network sees several crops of
// the same face. [AverageProbs] averages the crops' softmax outputs into the
// single probability vector that goes into a Prediction.
//
// # Calibration
//
// A classifier is calibrated when its confidence (the largest predicted
// probability) matches how often it is right. [ReliabilityBins] groups
// predictions by confidence to draw a reliability diagram, and
// [FitTemperature] learns the single scalar T of temperature scaling
// (Guo et al., 2017): dividing logits by T > 1 softens over-confident
// predictions without changing which class wins. [ApplyTemperature] turns
// logits into calibrated probabilities.
//
// # Fairness
//
// [Breakdown] splits accuracy by an arbitrary caller-supplied key per
// example (for instance "female/asian/25-32") so that gaps between groups
// become visible.
//
// # Plots
//
// Package eval/plot draws the confusion matrix, training curves and
// reliability diagrams as PNG files. It lives apart so that eval, and the
// library packages that use it (predict), depend on the standard library
// only — no plotting, font, PDF or LaTeX packages.
package eval
