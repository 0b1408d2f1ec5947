package nvml

import "time"

// SetCallTimeout sets the bound of one call through the helper until the
// test ends.
func SetCallTimeout(d time.Duration) (restore func()) {
	old := callTimeout
	callTimeout = d
	return func() { callTimeout = old }
}
