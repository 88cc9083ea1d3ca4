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

// TestCommandLine: "help CMD" is "CMD -h"; a bad flag value gets one line
// naming -h (not the whole help) and status 2; version takes no
// arguments and is also --version; flags the chosen detector does not use
// are refused.
func TestCommandLine(t *testing.T) {
	run := func(args ...string) (string, int) {
		c := exec.Command(os.Args[0], args...)
		c.Env = append(os.Environ(), runMainEnv+"=1")
		out, _ := c.CombinedOutput()
		return string(out), c.ProcessState.ExitCode()
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help", "predict"}, 0, "usage: agegender predict"},
		{[]string{"predict", "--min-score", "abc"}, 2, `Run "agegender predict -h" for its flags.`},
		{[]string{"version", "-h"}, 2, "takes no arguments"},
		{[]string{"--version"}, 0, "backends compiled in"},
		{[]string{"predict", "--min-face", "10", "x.jpg"}, 1, "--min-face applies to --detector pigo only"},
		{[]string{"predict", "--detector", "pigo", "--tiles", "x.jpg"}, 1, "--tiles applies to --detector blazeface only"},
		{[]string{"predict", "--max-pixels", "100", "x.jpg"}, 1, "use at least 4096"},
		{[]string{"predict", "x.jpg", "--json"}, 1, "flags go before them"},
		{[]string{"predict", "--min-score", "1.5", "x.jpg"}, 1, "use a value in [0, 1)"},
		{[]string{"predict", "--detector", "haar", "x.jpg"}, 1, "use one of blazeface"},
	} {
		out, code := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("agegender %s: status %d, output:\n%s\nwant status %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
		if tc.code == 2 && strings.Count(out, "\n") > 2 {
			t.Errorf("agegender %s: %d lines; want the error alone", strings.Join(tc.args, " "), strings.Count(out, "\n"))
		}
	}
}
