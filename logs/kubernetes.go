package logs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/internal/kube"
)

// containerName is a Kubernetes container name: a DNS label.
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// NewKubernetesSource returns the source of the log of a container of the
// collector's own pod, read through the Kubernetes API
// (GET .../pods/{pod}/log, follow=true, timestamps=true) with the pod's
// service account, found as kube.FromEnv says; it needs get on pods and
// pods/log.
//
// The API does not tell stdout from stderr: every record's stream is
// "stdout". After a dropped stream or a restart of the collector the source
// resumes with sinceTime and drops the lines already passed; when the
// container restarted, it reads the end of the previous instance's log
// (previous=true) before the new one's. The API server is reached only when
// the source runs.
func NewKubernetesSource(container string, getenv func(string) string) (Source, error) {
	spec := "k8s:" + container
	if !containerName.MatchString(container) {
		return nil, fmt.Errorf("--logs: %q: a container name is a DNS label: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit", spec)
	}
	client, err := kube.FromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("--logs: %q: %w", spec, err)
	}
	client.Needs = "get on pods and pods/log"
	return &kubernetesSource{
		container: container,
		client:    client,
		retry:     backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		drainFor:  5 * time.Second,
	}, nil
}

type kubernetesSource struct {
	container string
	client    *kube.Client
	retry     backoff.Backoff
	drainFor  time.Duration // bounds the last read at the end of the run
}

func (s *kubernetesSource) Name() string { return sourceName("k8s", s.container) }

// The parts of a pod the source reads.
type k8sPod struct {
	Metadata struct {
		DeletionTimestamp *time.Time `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		RestartPolicy  string         `json:"restartPolicy"`
		Containers     []k8sContainer `json:"containers"`
		InitContainers []k8sContainer `json:"initContainers"`
	} `json:"spec"`
	Status struct {
		Phase                 string               `json:"phase"`
		ContainerStatuses     []k8sContainerStatus `json:"containerStatuses"`
		InitContainerStatuses []k8sContainerStatus `json:"initContainerStatuses"`
	} `json:"status"`
}

type k8sContainer struct {
	Name string `json:"name"`
	TTY  bool   `json:"tty"`
}

type k8sContainerStatus struct {
	Name         string            `json:"name"`
	RestartCount int               `json:"restartCount"`
	State        k8sContainerState `json:"state"`
	LastState    k8sContainerState `json:"lastState"`
}

type k8sContainerState struct {
	Waiting    *struct{} `json:"waiting"`
	Running    *struct{} `json:"running"`
	Terminated *struct {
		ExitCode int `json:"exitCode"`
	} `json:"terminated"`
}

// podStatus returns the container's spec and status in the pod, and
// whether the container will not run again once terminated.
func (s *kubernetesSource) podStatus(ctx context.Context) (k8sContainer, *k8sContainerStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var pod k8sPod
	if err := s.client.GetPod(ctx, &pod); err != nil {
		return k8sContainer{}, nil, false, err
	}
	var spec *k8sContainer
	var names []string
	for _, c := range append(pod.Spec.Containers, pod.Spec.InitContainers...) {
		names = append(names, c.Name)
		if c.Name == s.container {
			spec = &c
		}
	}
	if spec == nil {
		return k8sContainer{}, nil, false, &kube.Error{Op: "get pod " + s.client.Namespace + "/" + s.client.Pod, Status: http.StatusNotFound,
			Message: fmt.Sprintf("the pod has no container %q (its containers: %s)", s.container, strings.Join(names, ", "))}
	}
	var status *k8sContainerStatus
	for _, cs := range append(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses...) {
		if cs.Name == s.container {
			status = &cs
		}
	}
	final := pod.Status.Phase == "Succeeded" || pod.Status.Phase == "Failed" || pod.Metadata.DeletionTimestamp != nil
	if status != nil && status.State.Terminated != nil {
		switch pod.Spec.RestartPolicy {
		case "Never":
			final = true
		case "OnFailure":
			final = final || status.State.Terminated.ExitCode == 0
		}
	}
	return *spec, status, final, nil
}

// Run follows the container's log from the position after from, across
// dropped streams and restarts of the container. It returns nil once the
// container has terminated for good and its log is read to the end, or,
// when ctx ends, once it has read what the API has now.
func (s *kubernetesSource) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	p, err := parseStampedPosition(from)
	if err != nil {
		return fmt.Errorf("k8s:%s: %w", s.container, err)
	}
	run := &k8sRun{
		kubernetesSource: s,
		cur:              newStampedCursor(p),
		reader:           newStampedReader(false),
		fresh:            p == stampedPosition{},
		drained:          -1,
		emit:             emit,
	}
	for {
		ended := ctx.Err() != nil
		rctx := ctx
		var cancel context.CancelFunc = func() {}
		if ended {
			// The end of the run: read what there is now, once.
			rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.drainFor)
		}
		done, err := run.step(rctx, !ended)
		cancel()
		if err, ok := asEmitError(err); ok {
			return err
		}
		var apiErr *kube.Error
		switch {
		case errors.As(err, &apiErr) && apiErr.Permanent():
			return fmt.Errorf("k8s:%s: %w", s.container, err)
		case ended && err != nil:
			return fmt.Errorf("k8s:%s: last read at the end of the run: %w", s.container, err)
		case done || ended:
			return nil
		}
		if ctx.Err() == nil {
			s.retry.Wait(ctx)
		}
	}
}

// k8sRun is one Run of the source.
type k8sRun struct {
	*kubernetesSource
	cur    *stampedCursor
	reader *stampedReader
	fresh  bool // no position: start from the beginning
	// drained is the restart count of the instance last read to its end
	// after it terminated (-1: none).
	drained int
	emit    func(Record, Position) error
}

// step looks at the container once and reads what its state calls for:
// the end of the previous instance's log after a restart, the current
// instance's log (followed while it runs, when follow), the end of the
// instance that terminated while the next one waits to start. done: the
// container has terminated for good and its log is read.
func (r *k8sRun) step(ctx context.Context, follow bool) (bool, error) {
	spec, status, final, err := r.podStatus(ctx)
	if err != nil || status == nil {
		return false, err // no status yet: the pod is being scheduled
	}
	r.reader.stripCR = spec.TTY // a TTY's lines end in \r\n
	if r.fresh {
		// No position: from the beginning, the previous instance's log
		// first when the container has restarted already.
		r.fresh = false
		r.cur.restarts = max(status.RestartCount-1, 0)
	}
	if status.RestartCount > r.cur.restarts {
		// The instance the cursor is in has ended. The API keeps the log
		// of one previous instance: its end is read when it is the
		// cursor's; otherwise the instances between are gone and the
		// previous one is read whole.
		if status.RestartCount > r.cur.restarts+1 {
			*r.cur = *newStampedCursor(stampedPosition{Restarts: status.RestartCount - 1})
		}
		if _, err := r.read(ctx, true, false); err != nil && !noLog(err) {
			return false, err
		}
		*r.cur = *newStampedCursor(stampedPosition{Restarts: status.RestartCount})
	}
	switch {
	case status.State.Running != nil:
		n, err := r.read(ctx, false, follow)
		if n > 0 {
			r.retry.Reset()
		}
		return false, err
	case status.State.Terminated != nil:
		// Read to the end: all of it is there.
		if _, err := r.read(ctx, false, false); err != nil {
			return false, err
		}
		r.drained = status.RestartCount
		return final, nil
	case status.LastState.Terminated != nil && r.drained != status.RestartCount:
		// Waiting to restart (CrashLoopBackOff): the current log is still
		// the terminated instance's; read it to its end once, in case the
		// run ends before the next instance starts.
		if _, err := r.read(ctx, false, false); err != nil && !noLog(err) {
			return false, err
		}
		r.drained = status.RestartCount
	}
	return false, nil // waiting to start or restart
}

// noLog tells whether err is the API saying it has no such log (400: no
// previous instance, the container waiting to start).
func noLog(err error) bool {
	var apiErr *kube.Error
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest
}

// read reads one log of the container (the current or the previous
// instance's) from the cursor, following it or not.
func (r *k8sRun) read(ctx context.Context, previous, follow bool) (int, error) {
	q := url.Values{"container": {r.container}, "timestamps": {"true"}}
	if follow {
		q.Set("follow", "true")
	}
	if previous {
		q.Set("previous", "true")
	}
	if since := r.cur.since(); !since.IsZero() {
		q.Set("sinceTime", since.UTC().Format(time.RFC3339))
	}
	resp, err := r.client.Get(ctx, "get pods/log of "+r.client.Namespace+"/"+r.client.Pod, "/log", q)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	r.cur.session()
	end := endLine // a log read to its end
	if follow {
		end = endCut // a followed stream ends mid-line only when cut
	}
	return r.reader.copy(resp.Body, r.cur, Record{Container: r.container, Stream: "stdout"}, end, r.emit)
}
