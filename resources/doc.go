// Package resources owns resource sampling: the job's CPU, memory, GPU and
// shared memory, measured by the collector with no code in the job, stored
// as a series of JSON Lines chunks under <run>/resources/ and a
// summary.json beside them. The Sampler is a component of the run (see
// cmd/collector), started after the restore and stopped within its share
// of the shutdown budget; Latest gives the last sample for Prometheus
// gauges.
//
// # Sources
//
// Each source is a small type behind the Source interface. One that is
// absent is reported once at start ("no GPU: <reason>"), never on every
// tick:
//
//   - ProcessTree reads /proc: the processes named (--resources-pid, and
//     their descendants; those of --resources-cgroup); else in wrapper mode
//     the collector's descendants (the wrapped command and everything it
//     starts, followed as they come and go, and kept when adopted outside
//     the tree); in a sidecar in a container's process namespace every
//     process it can see but its own (a pod's shared process namespace);
//     in a sidecar that sees the host's processes, none. The start's log
//     line "sampling resources" says which (job=). A
//     process's CPU time is counted once: while it lives as its own time
//     plus that of the children it reaped (cutime, cstime), after it has
//     gone through its parent's cutime, or, when its parent is outside the
//     tree, as the last sample saw it. RSS, PSS (every 10 s at most: it
//     walks every mapping), threads, open files, read and write bytes.
//     A process whose parent starts and exits between two samples and that
//     is adopted outside the tree is not seen.
//   - Cgroup reads the cgroup named (--resources-cgroup), else the
//     collector's own in wrapper mode, v2 or the v1 memory, cpu and
//     cpuacct controllers: CPU, throttling, memory use, limit and peak,
//     limit hits and OOM kills (v2 memory.events oom_kill; v1
//     memory.oom_control oom_kill, or under_oom before Linux 4.13). It is
//     the job's in wrapper mode only; a sidecar's is its own container's,
//     so a sidecar does not read its own.
//   - GPU reads NVIDIA GPUs through the NVML interface (package nvml):
//     libnvidia-ml loaded at run time, in this process in a build with cgo,
//     through the embedded NVML helper in make build's static binary; a
//     fake in tests. Per
//     device (MIG devices listed as such, gpuN_migM): utilisation, memory
//     used and total, power, temperature, SM clock, and the GPU memory of
//     the job's processes.
//   - Shm reads the size and use of /dev/shm, and warns once when it is 64
//     MiB or less and more than 80 % full (PyTorch DataLoader's "bus
//     error").
//   - Container reads a named container's Docker stats through the
//     engine's socket (the docker plugin and --resources-container: the
//     compose deployment's job container): CPU as docker stats computes
//     it, working set, use and limit, pids, shm, throttling, block I/O.
//     The engine takes a second to answer, so it is asked in the
//     background and each sample takes its latest answer.
//   - Pod reads the collector's own pod through the Kubernetes API (a
//     sidecar in Kubernetes; get on pods): the job's containers' memory and
//     CPU limits from the spec, and from the status their restarts, the
//     exit code of their last termination, and their terminations and OOM
//     kills (reason OOMKilled), each counted once. A native sidecar cannot
//     read the job's cgroup; this is what tells it the job was OOM-killed.
//     The last sample reads the pod again, waiting a moment for the job's
//     containers to show as terminated.
//
// # Series, chunks and the state section
//
// Every interval the sampler writes one record (timestamp, attempt,
// interval_seconds, one field per measure with its unit in the name:
// cpu_cores, rss_bytes, gpu0_util_percent) to the open chunk of its spool
// folder. Gauges are the value at the timestamp; counters are what happened
// over the interval since the previous record (read_bytes, cpu_seconds and
// cgroup_oom_kills are counts). A rate (cpu_cores) is taken over a window of
// half an interval at least, never from the milliseconds after the
// baseline or after the previous sample (the kernel counts CPU time in
// 10 ms ticks), and is never more than the cores the job can run on: a
// record that comes sooner has none, and the next one's covers both. Each record is flushed into
// the gzip stream, so a chunk a kill left open is readable up to its last
// whole record; the next start seals it with those records. Chunks are
// sealed by size (256 KiB) or age (5 minutes) and at the end, are
// immutable once sealed, and reach <run>/resources/ through the spool. A
// chunk is the series "samples" of the spool: named
// samples.<attempt, 6 digits>.<sequence, 8 digits>.jsonl.gz, the sequence
// running on across attempts (an earlier version's
// <sequence>-a<attempt>.jsonl.gz reads the same): in name order the
// records are in time order, and a retry never replaces a chunk an earlier
// attempt stored. summary.json follows the sync interval.
//
// The section "resources" of the run's state holds the number of chunks
// the store holds in sequence and the running aggregates of their samples
// (count, sums, peaks, core-seconds, GPU-seconds, OOM kills). It moves when
// the spool reports a chunk stored, so a retried job continues the series
// and the summary without counting a sample twice: on a new disk it starts
// from the section; on the same disk it also counts the chunks still in the
// spool, which the store will get.
//
// # Summary
//
// summary.json is small and rewritten in place, so it goes to the store
// with the target's PutBytes rather than as a chunk (the spool's chunks are
// immutable). It is rewritten from the aggregates after every sealed chunk
// (in the background: a slow store does not hold up sampling) and, final,
// at the end.
package resources
