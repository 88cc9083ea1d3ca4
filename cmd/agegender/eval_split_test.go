package main

import (
	"context"
	"strings"
	"testing"
)

// TestEvalRejectsUnknownSplit: --split accepts only test and val (it used
// to evaluate the test split for any other value), and says so before
// loading any data.
func TestEvalRejectsUnknownSplit(t *testing.T) {
	for _, split := range []string{"train", "validation", ""} {
		err := cmdEval(context.Background(), []string{"--split", split, "--data", t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "--split") {
			t.Errorf("eval --split %q: error %v, want one about --split", split, err)
		}
	}
}
