// Package probe owns the collector's HTTP listener (--probe-addr) and its
// readiness: a flag that turns on once the run's outputs are restored,
// served as /readyz (and /healthz) and written as a ready file, so that a
// Kubernetes native sidecar's startup probe holds the main container until
// its checkpoint is back; and /metrics, the Prometheus registry in which the
// components register their collectors.
package probe
