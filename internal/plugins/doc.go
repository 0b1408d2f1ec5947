// Package plugins owns Polyaxon's `plugins:` section (V1Plugins): which of the
// collector's utilities are on (collectArtifacts, collectLogs,
// collectResources, autoResume), the log level, the sidecar's sync interval,
// and the keys that shape what the wrapped command gets (auth, docker, shm,
// mountArtifactsStore, externalHost).
//
// Parse reads the section out of a whole polyaxonfile (kind operation,
// component or compiled_operation, the operation's plugins patched over its
// inline component's as Polyaxon compiles them), a bare `plugins:` section or
// the bare keys, in YAML or JSON, with camelCase or snake_case keys. Every
// V1Plugins key is accepted; those the collector does not act on
// (syncStatuses, notifications, the sidecar's image fields, ...) come back as
// notices, and so does a key that is neither known nor close to a known one,
// so that a newer Polyaxon never stops a run. A key close to a known one is
// a misspelling and an error, with the key it is close to.
package plugins
