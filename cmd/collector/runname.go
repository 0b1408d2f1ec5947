package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mlsidecar/collector/internal/kube"
)

// podLookupTimeout bounds the reading of the pod's Job at start.
const podLookupTimeout = 15 * time.Second

// runFromPod names the run after the pod's Job when no run name was given,
// the collector runs in a Kubernetes pod and autoResume is on: a new UUID
// there differs in every pod a retry of the Job makes, so the retry would
// start an empty run instead of resuming this one. The Job is read through
// the Kubernetes API with the pod's service account (internal/kube); with
// none found, no run name is a bad setting. Outside a pod, or with
// autoResume off, the run stays unnamed (a new UUID).
func (s *settings) runFromPod(getenv func(string) string) error {
	if s.Run != "" || !s.AutoResume || !kube.InPod(getenv) {
		return nil
	}
	client, err := kube.FromEnv(getenv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), podLookupTimeout)
		defer cancel()
		var job string
		if job, err = client.JobName(ctx); err == nil && job != "" {
			s.Run = job
			return nil
		}
		if err == nil {
			err = fmt.Errorf("pod %s/%s: no label %s or %s and no Job owner: it is no Job's pod",
				client.Namespace, client.Pod, kube.JobNameLabel, kube.LegacyJobNameLabel)
		}
	}
	return fmt.Errorf("--run: no run name (--run, COLLECTOR_RUN), and this collector runs in a Kubernetes pod "+
		"(KUBERNETES_SERVICE_HOST is set) with autoResume on: a new random name in every pod would never resume the run. "+
		"Set COLLECTOR_RUN to a name the Job's retries keep, the Job's from the downward API "+
		"(env valueFrom.fieldRef.fieldPath: metadata.labels['job-name']), or --run; "+
		"or turn autoResume off (--auto-resume=false, or plugins autoResume: false) for a new run in every pod. "+
		"The pod's Job could not be read instead: %v", err)
}
