package resume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

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

// ListReplicas returns the names of the run's replicas (run rooted at
// <run>/), those with a folder under replicas/, in string order: one
// listing, one level deep.
func ListReplicas(ctx context.Context, run *blob.Bucket) ([]string, error) {
	var names []string
	it := stores.List(run, &blob.ListOptions{Prefix: ReplicasPrefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			slices.Sort(names) // the listing puts "a-b/" before "a/"
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", ReplicasPrefix, err)
		}
		if obj.IsDir {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(obj.Key, ReplicasPrefix), "/"))
		}
	}
}
