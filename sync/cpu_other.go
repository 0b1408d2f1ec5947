//go:build !unix

package sync

import "time"

// processCPU is not known here: a scan's cost is its wall time.
func processCPU() (time.Duration, bool) { return 0, false }
