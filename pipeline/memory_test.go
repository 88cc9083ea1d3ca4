package pipeline

import (
	"os"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
)

// TestWholeTrunkMemoryCheck: a faceres whole-trunk batch beyond the
// machine's memory is refused with the batch that fits; a small one, and
// trunks that were not measured, pass.
func TestWholeTrunkMemoryCheck(t *testing.T) {
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo: the check does nothing here")
	}
	err = checkWholeTrunkMemory(b, "faceres", 1<<22)
	if err == nil || !strings.Contains(err.Error(), "use --batch") {
		t.Errorf("batch 4M: %v, want a refusal naming the batch that fits", err)
	}
	for _, c := range []struct {
		trunk string
		batch int
	}{{"faceres", 1}, {"gear", 1 << 22}} {
		if err := checkWholeTrunkMemory(b, c.trunk, c.batch); err != nil {
			t.Errorf("%s at batch %d: %v, want no refusal", c.trunk, c.batch, err)
		}
	}
}
