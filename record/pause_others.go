//go:build !linux

package record

import "time"

// pause sleeps d.
func pause(d time.Duration) { time.Sleep(d) }
