// Package cmd holds the collector's commands: cmd/collector, the one binary,
// which parses the settings, opens the store, restores the run and runs its
// components. It holds no component's logic.
package cmd
