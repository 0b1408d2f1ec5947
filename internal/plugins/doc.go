// Package plugins owns Polyaxon's `plugins:` section: which of the
// collector's utilities are on (collectArtifacts, collectLogs,
// collectResources, autoResume), the log level, and the sidecar's sync
// interval. Keys that configure the pod rather than the collector (auth,
// docker, shm, mountArtifactsStore, externalHost) are accepted so a Polyaxon
// spec loads unchanged.
package plugins
