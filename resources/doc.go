// Package resources will own resource sampling: the job's CPU, memory, GPU
// and shared memory, measured by the collector with no code in the job,
// stored as a series under <run>/resources/ and a summary.json. It is a
// component of the run (see cmd/collector), started after the restore and
// stopped within its share of the shutdown budget. This file is the design
// the package is built to; the code lands with the resource sampling issue.
//
// # Samplers
//
// Each source is a small type behind one interface, reporting once at start
// when it is absent ("no GPU: <reason>") and never on every tick: the
// process tree of the wrapped command (or, in a sidecar, the processes of
// a shared process namespace), the container's cgroup (v2, with v1 as
// fallback), NVML for NVIDIA GPUs (a build without cgo says it has no GPU
// support), Docker stats of a named container (docker plugin only), and
// /dev/shm.
//
// # Spool, chunks and the state section
//
// Every --resources-interval the sampler writes one JSON Lines record
// (timestamp, attempt, one field per measure with its unit in the name:
// cpu_cores, rss_bytes, gpu0_util_percent) to the open chunk in the spool
// (<state>/<run>/spool/resources/). Chunks are sealed by size or age and at
// the end of the run, are immutable once sealed, and reach <run>/resources/
// through the sync engine's uploader, as log chunks do.
//
// The component's section of the run's state
// (resume.Keeper.Section("resources")) holds the next chunk's sequence
// number and the running aggregates of the summary (sample count, sums and
// peaks, core-seconds, GPU-seconds, OOM kills seen). It is saved after a
// chunk is in the store, so a retried job continues the series and the
// summary without counting a sample twice; summary.json is rewritten from
// the section, kept current during the run and final at the end.
package resources
