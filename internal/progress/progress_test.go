package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told to.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBar(w *bytes.Buffer, total int, unit string) (*Bar, *fakeClock) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	b := New(w, total, "decoding", unit)
	b.now = c.now
	b.start, b.lastLog = c.t, c.t
	return b, c
}

func TestLogLines(t *testing.T) {
	var w bytes.Buffer
	b, c := newTestBar(&w, 100, "img")
	b.Add(10) // before LogEvery: nothing printed
	if w.Len() != 0 {
		t.Fatalf("printed before %v: %q", LogEvery, w.String())
	}
	c.advance(LogEvery)
	b.Add(10)
	got := w.String()
	want := "decoding 20/100 (20%), 2.0 img/s, 40s left\n"
	if got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	if strings.Contains(got, "\r") {
		t.Errorf("carriage return in a log line: %q", got)
	}
	c.advance(time.Second)
	b.Add(1) // within LogEvery of the last line: nothing
	if w.String() != want {
		t.Errorf("printed again within %v: %q", LogEvery, w.String())
	}
	b.Finish()
	if !strings.HasSuffix(w.String(), "decoding 21/100 (21%), 1.9 img/s, 41s left\n") {
		t.Errorf("Finish line: %q", w.String())
	}
}

func TestNoRateBeforeASecond(t *testing.T) {
	var w bytes.Buffer
	b, c := newTestBar(&w, 10, "batch")
	b.Add(5) // a cached burst: no rate from it yet
	if r := b.rateLocked(); r != "" {
		t.Errorf("rate after 0 s = %q, want none", r)
	}
	c.advance(2 * time.Second)
	if r := b.rateLocked(); r != ", 2.5 batch/s, 2s left" {
		t.Errorf("rate = %q", r)
	}
}

func TestStartIsNotCountedInTheRate(t *testing.T) {
	var w bytes.Buffer
	b, c := newTestBar(&w, 100, "batch")
	b.Start(50) // resumed midway
	c.advance(10 * time.Second)
	b.Add(5)
	if r := b.rateLocked(); r != ", 2.0 s/batch, 1m30s left" {
		t.Errorf("rate = %q (the 50 resumed batches must not count)", r)
	}
	b.Finish()
	if !strings.Contains(w.String(), "55/100") {
		t.Errorf("Finish line %q lacks the count", w.String())
	}
}

func TestNoUnitNoRate(t *testing.T) {
	var w bytes.Buffer
	b, c := newTestBar(&w, 4, "")
	c.advance(LogEvery)
	b.Add(1)
	if got := w.String(); got != "decoding 1/4 (25%)\n" {
		t.Errorf("line = %q", got)
	}
}

func TestNilBar(t *testing.T) {
	b := New(nil, 10, "x", "img")
	if b != nil {
		t.Fatal("New(nil, ...) is not nil")
	}
	b.Add(1)
	b.Set(2)
	b.Start(1)
	b.Describe("y")
	b.Clear()
	b.Finish()
}

func TestFinishWithoutWorkPrintsNothing(t *testing.T) {
	var w bytes.Buffer
	b, _ := newTestBar(&w, 10, "img")
	b.Start(10) // everything was done before (a finished, resumed epoch)
	b.Finish()
	if w.Len() != 0 {
		t.Errorf("printed %q", w.String())
	}
}

func TestFormatRate(t *testing.T) {
	for _, c := range []struct {
		r    float64
		want string
	}{{31.25, "31.2 img/s"}, {1, "1.0 img/s"}, {0.25, "4.0 s/img"}} {
		if got := FormatRate(c.r, "img"); got != c.want {
			t.Errorf("FormatRate(%g) = %q, want %q", c.r, got, c.want)
		}
	}
}

// TestFinishDoesNotRepeatTheLastLine: a loop whose last item was just
// printed ends without a second line of the same count.
func TestFinishDoesNotRepeatTheLastLine(t *testing.T) {
	var w bytes.Buffer
	b, c := newTestBar(&w, 10, "batch")
	c.advance(LogEvery)
	b.Add(10)
	b.Finish()
	if n := strings.Count(w.String(), "\n"); n != 1 {
		t.Errorf("%d lines for a loop printed at its end, want 1: %q", n, w.String())
	}
}
