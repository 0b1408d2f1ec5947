//go:build !cgo || !linux

package resources

import "errors"

// OpenNVML fails in a build without cgo: NVML is a C library.
func OpenNVML() (NVML, error) {
	return nil, errors.New("no GPU support: built without cgo")
}
