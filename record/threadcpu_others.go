//go:build !linux

package record

import "time"

// threadCPU is not measured here: RUSAGE_THREAD is Linux's.
func threadCPU() time.Duration { return 0 }
