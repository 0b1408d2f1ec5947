package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// A replica is one of N collectors on one run (a distributed job: one
// sidecar per pod). Its state, logs and resources are its own, under
// resume.ReplicaPrefix (collector.home); the outputs folder is the run's,
// shared; see docs/distributed.md.

// replicaPattern is what a replica's name may be: it is a folder's name in
// the store's keys.
var replicaPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// validateReplica checks --replica.
func validateReplica(name string) error {
	if name == "" || replicaPattern.MatchString(name) {
		return nil
	}
	return fmt.Errorf("--replica: %q is not a valid replica name; use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
}

// replicaFromPlatform is the replica's name as the platform running the job
// says it, and the variable it comes from; "" when it says none. In order:
//   - TF_CONFIG's task (the training operator's TFJob, and TensorFlow's other
//     launchers): <type>-<index>, e.g. chief-0, worker-3;
//   - RANK with WORLD_SIZE (the training operator's PyTorchJob: the master is
//     0, worker i is i+1): rank-<RANK>;
//   - JOB_COMPLETION_INDEX (an indexed Job, and each Job of a JobSet): the
//     pod's HOSTNAME where it ends with -<index> (an indexed Job's pods are
//     <job>-<index>, a JobSet's <jobset>-<replicated job>-<job index>-<index>,
//     the same for the pod that replaces a failed one), else index-<index>.
//
// The pod's name is not used: a Job's pod gets a new one on each retry.
func replicaFromPlatform(getenv func(string) string) (name, from string) {
	if tc := getenv("TF_CONFIG"); tc != "" {
		var cfg struct {
			Task struct {
				Type  string `json:"type"`
				Index *int   `json:"index"`
			} `json:"task"`
		}
		if json.Unmarshal([]byte(tc), &cfg) == nil && cfg.Task.Type != "" && cfg.Task.Index != nil {
			return strings.ToLower(cfg.Task.Type) + "-" + strconv.Itoa(*cfg.Task.Index), "TF_CONFIG"
		}
	}
	if rank := getenv("RANK"); rank != "" && getenv("WORLD_SIZE") != "" {
		if _, err := strconv.Atoi(rank); err == nil {
			return "rank-" + rank, "RANK"
		}
	}
	if index := getenv("JOB_COMPLETION_INDEX"); index != "" {
		if _, err := strconv.Atoi(index); err == nil {
			if host := strings.ToLower(getenv("HOSTNAME")); strings.HasSuffix(host, "-"+index) && replicaPattern.MatchString(host) {
				return host, "HOSTNAME"
			}
			return "index-" + index, "JOB_COMPLETION_INDEX"
		}
	}
	return "", ""
}

// replicaKey is the key, under the store's root, of the replica's part of
// the run: "<run>/" or "<run>/replicas/<name>/".
func (c *collector) replicaKey() string {
	return c.set.Run + "/" + resume.ReplicaPrefix(c.set.Replica)
}

// sumReplicas adds the replica's final resources summary to the run's, the
// sum over its replicas (resources.EndReplica), at the end of the replica's
// attempt: a few requests whatever the number of replicas, never during the
// run.
func (c *collector) sumReplicas(ctx context.Context) {
	if err := resources.EndReplica(ctx, c.run, c.set.Run, c.set.Replica); err != nil {
		c.log.Warn("cannot write the run's resources summary, the sum over its replicas", "err", stores.Redact(err))
	}
}
