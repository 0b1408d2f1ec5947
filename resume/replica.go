package resume

// ReplicasPrefix is where the replicas of a distributed run keep their own
// part of the run, under the run's prefix.
const ReplicasPrefix = "replicas/"

// ReplicaPrefix is where a replica keeps its state, attempts, logs and
// resources, under the run's prefix: replicas/<name>/, holding the names a
// single-replica run has at its root (.collector/, logs/, resources/). The
// replica "" is a single-replica run: its prefix is "", the run's own.
// Outputs are the run's, one folder for all replicas.
func ReplicaPrefix(replica string) string {
	if replica == "" {
		return ""
	}
	return ReplicasPrefix + replica + "/"
}
