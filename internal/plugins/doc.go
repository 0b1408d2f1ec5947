// Package plugins owns Polyaxon's `plugins:` section (V1Plugins): which of the
// collector's utilities are on (collectArtifacts, collectLogs,
// collectResources, autoResume), the log level, the sidecar's sync interval,
// and the keys that shape what the wrapped command gets (auth, docker, shm,
// mountArtifactsStore, externalHost).
//
// Parse reads the section from any form a Polyaxon user has at hand. A key
// the collector does not act on, or does not know, comes back as a notice,
// so that a newer Polyaxon never stops a run; a key close to a known one is
// a misspelling and an error.
package plugins
