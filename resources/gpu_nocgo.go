//go:build !linux || (!cgo && !nvml_helper)

package resources

import "errors"

// OpenNVML fails in a build that can load no C library (no cgo) and carries
// no NVML helper: `make build` embeds one.
func OpenNVML() (NVML, error) {
	return nil, errors.New("no GPU support: built without cgo and without the NVML helper (make build embeds it)")
}
