// Package logs owns log collection: the job's log lines from every source
// (the wrapped command, files, the Kubernetes API, the Docker engine),
// stored under <run>/logs/ as each source's series of the spool, each line
// exactly once through store outages, kills and retries, and read back in
// order by `collector logs` (Read, Follow, Tail).
//
// Each Source owns a position; the Collector keeps each source's cursor in
// the run's state section "logs" and moves it only when the store holds
// the chunk that ends there, so a restart resumes from what the store has.
// A paced source waits when the spool is full; the wrapped command is
// never slowed, and what it drops is counted in a "dropped" record.
// docs/logs.md describes the design.
package logs
