// Package photos runs an agegender.Analyzer over many photo files for the
// predict command: it turns the command line's files, folders and glob
// patterns into files (Expand), picks a shard of them (InShard), analyses
// them on a pool of workers with the results in input order (Run), and
// writes each result as a table row or a JSON line and, if asked, an
// annotated copy (Printer).
//
// The worker pool only decodes and detects in parallel; the networks'
// batching is the Analyzer's (see predict.Runner).
package photos
