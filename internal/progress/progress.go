// Package progress shows how far a long loop has come: a bar that redraws
// itself on a terminal (github.com/schollz/progressbar), and on anything
// else — a log file, a pipe, CI — one plain line every few seconds, so
// that logs hold readable lines instead of thousands of carriage returns.
//
// Every command's progress goes through one Bar, so they all look alike:
//
//	bar := progress.New(os.Stderr, len(files), "decoding", "img")
//	defer bar.Finish()
//	for range files {
//		...
//		bar.Add(1)
//	}
//
// The rate and the remaining time appear once an item is done and a
// second has passed, so the first lines never show a rate of zero or an
// estimate from a cached burst. A nil *Bar (New with a nil writer) does
// nothing, so callers need no checks.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// LogEvery is how often a Bar writing to a non-terminal prints a line.
const LogEvery = 10 * time.Second

// Bar reports progress on one loop of a known number of items. Its methods
// are safe for concurrent use and do nothing on a nil *Bar.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	total   int64
	unit    string
	desc    string
	done    int64
	base    int64 // items done before the Bar's loop started (Start)
	start   time.Time
	lastLog time.Time
	logged  int64 // the count of the last line printed (non-terminals)
	now     func() time.Time
	bar     *progressbar.ProgressBar // nil when w is not a terminal
}

// New starts a Bar of total items on w, described by desc (what is being
// done: "decoding train", "epoch 3/10"). unit names an item ("img",
// "batch") for the rate; "" shows no rate. A nil w gives a nil *Bar.
func New(w io.Writer, total int, desc, unit string) *Bar {
	if w == nil {
		return nil
	}
	b := &Bar{w: w, total: int64(total), unit: unit, desc: desc, now: time.Now}
	b.start = b.now()
	b.lastLog = b.start
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionSetWidth(20), progressbar.OptionSetPredictTime(false),
			progressbar.OptionThrottle(200 * time.Millisecond), progressbar.OptionClearOnFinish(),
		}
		b.bar = progressbar.NewOptions64(int64(total), opts...)
	}
	return b
}

// Describe replaces the description (for example with the running loss).
func (b *Bar) Describe(desc string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.desc = desc
	if b.bar != nil {
		b.bar.Describe(desc + b.rateLocked())
	}
}

// Add records n more items done.
func (b *Bar) Add(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setLocked(b.done + int64(n))
}

// Start records that n items were done before this loop began (an epoch
// resumed midway): they count towards the total but not the rate.
func (b *Bar) Start(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.base, b.done = int64(n), int64(n)
	if b.bar != nil && n > 0 {
		b.bar.Set64(b.done)
	}
}

// Set records that n items are done in all (for counts kept elsewhere).
func (b *Bar) Set(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setLocked(int64(n))
}

func (b *Bar) setLocked(n int64) {
	b.done = n
	if b.bar != nil {
		b.bar.Describe(b.desc + b.rateLocked())
		b.bar.Set64(n)
		return
	}
	if now := b.now(); now.Sub(b.lastLog) >= LogEvery {
		b.lastLog, b.logged = now, n
		fmt.Fprintln(b.w, b.lineLocked())
	}
}

// Clear removes the bar from the terminal (before printing a message
// under it); it does nothing on other writers.
func (b *Bar) Clear() {
	if b == nil || b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar.Clear()
}

// Finish ends the Bar: the terminal bar is cleared; other writers get a
// last line with the count and the mean rate, unless the last line
// printed already had that count.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Finish()
		return
	}
	if b.done > b.base && b.done != b.logged {
		fmt.Fprintln(b.w, b.lineLocked())
	}
}

// lineLocked is the plain-text line: "desc 120/500 (24%), 31.2 img/s, 12s left".
func (b *Bar) lineLocked() string {
	pct := 0.0
	if b.total > 0 {
		pct = 100 * float64(b.done) / float64(b.total)
	}
	return fmt.Sprintf("%s %d/%d (%.0f%%)%s", b.desc, b.done, b.total, pct, b.rateLocked())
}

// rateLocked is ", R unit/s, T left" once an item is done and a second
// has passed, else "".
func (b *Bar) rateLocked() string {
	n := b.done - b.base
	el := b.now().Sub(b.start)
	if b.unit == "" || n <= 0 || el < time.Second {
		return ""
	}
	rate := float64(n) / el.Seconds()
	s := ", " + FormatRate(rate, b.unit)
	if left := b.total - b.done; left > 0 {
		s += ", " + (time.Duration(float64(left) / rate * float64(time.Second))).Round(time.Second).String() + " left"
	}
	return s
}

// FormatRate writes a rate of unit per second readably: "31.2 img/s" at
// one a second or more, "4.2 s/img" below.
func FormatRate(perSecond float64, unit string) string {
	if perSecond >= 1 {
		return fmt.Sprintf("%.1f %s/s", perSecond, unit)
	}
	return fmt.Sprintf("%.1f s/%s", 1/perSecond, unit)
}
