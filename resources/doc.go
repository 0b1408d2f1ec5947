// Package resources owns resource sampling: the job's CPU, memory, GPU and
// shared memory, measured with no code in the job (Sources: ProcessTree,
// Cgroup, GPU, Shm, Container, Pod), stored as the spool's series
// "samples" under <run>/resources/ with a summary.json beside it, and read
// back by ReadSeries and ReadSummary. The Sampler is a component of the run;
// Latest gives the last sample for Prometheus gauges.
//
// Gauges are the value at a record's timestamp; counters are what happened
// since the previous record. The state section "resources" holds the chunks
// the store holds and the running aggregates, so a retried job continues
// the series and the summary without counting a sample twice.
// docs/resources.md describes the design.
package resources
