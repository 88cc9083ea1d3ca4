// Package timing measures how long a call takes, the same way in every
// bench tool: two warm-up calls, then calls for about secs seconds (at
// least three).
package timing

import "time"

// MsPerCall returns the mean milliseconds per call of f.
func MsPerCall(secs float64, f func()) float64 {
	f()
	f()
	start := time.Now()
	n := 0
	for time.Since(start).Seconds() < secs || n < 3 {
		f()
		n++
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(n)
}
