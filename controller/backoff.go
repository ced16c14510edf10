package controller

import (
	"fmt"
	"time"
)

// Backoff spaces out the attempts of something that keeps failing: the
// n-th wait is Initial·2^(n-1), capped at Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Delay is the wait after the given attempt (1-based; less counts as 1).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// validate names the setting that is wrong.
func (b Backoff) validate(name string) error {
	if b.Initial <= 0 || b.Max < b.Initial {
		return fmt.Errorf("%s: initial %s and max %s: want 0 < initial <= max", name, b.Initial, b.Max)
	}
	return nil
}
