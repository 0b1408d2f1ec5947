// Command collector-nvml is the collector's NVML helper: it loads
// libnvidia-ml.so.1 and answers the collector's NVML calls on stdin and
// stdout (package nvml's protocol). `make build` builds it (go generate
// ./resources/nvml) and embeds it in the static collector, which starts it
// from memory; it is not run by hand.
package main

import (
	"fmt"
	"os"

	"github.com/mlsidecar/collector/resources/nvml"
	"github.com/mlsidecar/collector/resources/nvml/dlopen"
)

func main() {
	lib, err := dlopen.Open()
	if err := nvml.Serve(os.Stdin, os.Stdout, lib, err); err != nil {
		fmt.Fprintln(os.Stderr, "collector-nvml:", err)
		os.Exit(1)
	}
}
