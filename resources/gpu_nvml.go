//go:build linux && cgo && !nvml_helper

package resources

import "github.com/mlsidecar/collector/resources/nvml/dlopen"

// OpenNVML loads libnvidia-ml.so.1 into this process (a build with cgo, as
// the tests and `go run` make it) and initialises it. Its errors are one
// line starting "no GPU".
func OpenNVML() (NVML, error) { return dlopen.Open() }
