package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run main() instead of the tests, so a
// test can run the command in a child process (-h exits the process).
const runMainEnv = "AGEGENDER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHelp runs "agegender CMD -h" for every command: each prints its own
// usage line and its flags, never Go's bare "Usage of CMD:", and exits 0.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"train", "eval", "predict", "serve", "import", "export", "transfer", "experiments"} {
		c := exec.Command(os.Args[0], cmd, "-h")
		c.Env = append(os.Environ(), runMainEnv+"=1")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("agegender %s -h: %v\n%s", cmd, err, out)
			continue
		}
		s := string(out)
		if !strings.HasPrefix(s, "usage: agegender "+cmd) || strings.Contains(s, "Usage of") || !strings.Contains(s, "  -") {
			t.Errorf("agegender %s -h printed:\n%s", cmd, s)
		}
	}
}
