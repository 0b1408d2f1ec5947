package resources

// Source is one thing the sampler measures: the process tree, the cgroup,
// the GPUs, /dev/shm. A source that is absent is not built (its constructor
// says why, once); one that is present adds its fields to every sample.
type Source interface {
	// Name names the source in logs: "process tree", "cgroup", "GPU", "shm".
	Name() string
	// Sample adds the source's fields to s, whose Time and Interval are set.
	// The source keeps what it needs (its counters at the previous sample)
	// to report rates and counts over the interval. An error leaves the
	// sample without the source's fields.
	Sample(s *Sample) error
}
