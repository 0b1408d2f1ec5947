package kube

import (
	"context"
	"errors"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// The labels the Job controller puts on the pods it makes: the first since
// Kubernetes 1.27, the second in every release (a Job with
// manualSelector: true gets neither).
const (
	JobNameLabel       = "batch.kubernetes.io/job-name"
	LegacyJobNameLabel = "job-name"
)

// jobPod is what JobName reads of the pod.
type jobPod struct {
	Metadata struct {
		Labels          map[string]string `json:"labels"`
		OwnerReferences []struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
			Controller *bool  `json:"controller"`
		} `json:"ownerReferences"`
	} `json:"metadata"`
}

// retryMin and retryMax bound the wait between two tries of JobName.
var retryMin, retryMax = 250 * time.Millisecond, 4 * time.Second

// JobName returns the name of the Job that made the pod, the same in every
// pod a retry of the Job makes: its label batch.kubernetes.io/job-name, else
// job-name, else its controlling owner reference of kind Job. It is "" for
// a pod that no Job made. An answer that asking again may change (a 5xx, a
// dropped connection) is asked again, with backoff, until ctx ends.
func (c *Client) JobName(ctx context.Context) (string, error) {
	// Jitter: a Job's pods starting together do not ask together.
	retry := backoff.Backoff{Min: retryMin, Max: retryMax}
	var last error // the server's last answer, rather than ctx's end
	for {
		var pod jobPod
		err := c.GetPod(ctx, &pod)
		if err == nil {
			return pod.jobName(), nil
		}
		var api *Error
		if errors.As(err, &api) && api.Permanent() {
			return "", err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if !retry.Wait(ctx) {
			return "", last
		}
	}
}

func (p *jobPod) jobName() string {
	for _, l := range []string{JobNameLabel, LegacyJobNameLabel} {
		if name := p.Metadata.Labels[l]; name != "" {
			return name
		}
	}
	for _, o := range p.Metadata.OwnerReferences {
		if o.Kind == "Job" && o.APIVersion == "batch/v1" && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return ""
}
