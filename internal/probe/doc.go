// Package probe owns the collector's readiness: a flag that turns on once
// the run's outputs are restored, served as /readyz (and /healthz) over HTTP
// and written as a ready file, so that a Kubernetes native sidecar's startup
// probe holds the main container until its checkpoint is back.
package probe
