//go:build linux && nvml_helper

package nvml

import _ "embed"

// helperExe is collector-nvml, built by go generate (`make build`).
//
//go:embed collector-nvml
var helperExe []byte

// OpenEmbedded starts the helper embedded in this binary (OpenHelper).
func OpenEmbedded() (*Helper, error) { return OpenHelper(helperExe) }
