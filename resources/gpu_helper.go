//go:build linux && nvml_helper

package resources

import "github.com/mlsidecar/collector/resources/nvml"

// OpenNVML starts the NVML helper embedded in this binary (`make build`'s
// static binary, which cannot load a C library itself). Its errors are one
// line starting "no GPU".
func OpenNVML() (NVML, error) {
	h, err := nvml.OpenEmbedded()
	if err != nil {
		return nil, err
	}
	return h, nil
}
