package logs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// serviceAccountDir is where Kubernetes mounts a pod's service-account
// token, CA and namespace.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// containerName is a Kubernetes container name: a DNS label.
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// NewKubernetesSource returns the source of the log of a container of the
// collector's own pod, read through the Kubernetes API
// (GET /api/v1/namespaces/{ns}/pods/{pod}/log, follow=true,
// timestamps=true) with the pod's service account. The pod's name and
// namespace come from the downward API: POD_NAME and POD_NAMESPACE (or
// COLLECTOR_POD_NAME and COLLECTOR_POD_NAMESPACE, which win; the
// namespace also from the service account's namespace file). The API
// server is KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT; the token and
// CA are read from /var/run/secrets/kubernetes.io/serviceaccount, or the
// folder COLLECTOR_SERVICEACCOUNT_DIR names.
//
// The API does not tell stdout from stderr: every record's stream is
// "stdout". After a dropped stream or a restart of the collector the source
// resumes with sinceTime and drops the lines already passed; when the
// container restarted, it reads the end of the previous instance's log
// (previous=true) before the new one's. The API server is reached only when
// the source runs; the service account needs get on pods and pods/log.
func NewKubernetesSource(container string, getenv func(string) string) (Source, error) {
	spec := "k8s:" + container
	if !containerName.MatchString(container) {
		return nil, fmt.Errorf("--logs: %q: a container name is a DNS label: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit", spec)
	}
	env := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	dir := env("COLLECTOR_SERVICEACCOUNT_DIR")
	if dir == "" {
		dir = serviceAccountDir
	}
	host, port := env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, fmt.Errorf("--logs: %q: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: the source reads the Kubernetes API from inside a pod", spec)
	}
	pod := env("COLLECTOR_POD_NAME", "POD_NAME")
	if pod == "" {
		return nil, fmt.Errorf("--logs: %q: the pod's name is unknown: set POD_NAME (or COLLECTOR_POD_NAME) from the downward API (valueFrom.fieldRef.fieldPath: metadata.name)", spec)
	}
	ns := env("COLLECTOR_POD_NAMESPACE", "POD_NAMESPACE")
	if ns == "" {
		b, err := os.ReadFile(filepath.Join(dir, "namespace"))
		if ns = strings.TrimSpace(string(b)); err != nil || ns == "" {
			return nil, fmt.Errorf("--logs: %q: the pod's namespace is unknown: set POD_NAMESPACE (or COLLECTOR_POD_NAMESPACE) from the downward API (valueFrom.fieldRef.fieldPath: metadata.namespace); %s gives none", spec, filepath.Join(dir, "namespace"))
		}
	}
	tokenPath := filepath.Join(dir, "token")
	if _, err := readToken(tokenPath); err != nil {
		return nil, fmt.Errorf("--logs: %q: %v (the pod needs its service-account token: automountServiceAccountToken)", spec, err)
	}
	caPath := filepath.Join(dir, "ca.crt")
	pem, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("--logs: %q: the API server's CA: %v", spec, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--logs: %q: the API server's CA: %s holds no PEM certificate", spec, caPath)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        2,
		IdleConnTimeout:     60 * time.Second,
	}
	return &kubernetesSource{
		container: container,
		pod:       pod,
		namespace: ns,
		base:      "https://" + net.JoinHostPort(host, port) + "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod),
		tokenPath: tokenPath,
		http:      &http.Client{Transport: transport},
		retry:     backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		drainFor:  5 * time.Second,
	}, nil
}

// readToken reads the service-account token; kubelet rotates it in place,
// so it is read again for every request.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("service-account token %s: %v", path, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("service-account token %s is empty", path)
	}
	return token, nil
}

type kubernetesSource struct {
	container      string
	pod, namespace string
	base           string // the pod's URL
	tokenPath      string
	http           *http.Client
	retry          backoff.Backoff
	drainFor       time.Duration // bounds the last read at the end of the run
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

// errAPI is an answer of the API server other than 200.
type errAPI struct {
	what    string
	status  int
	message string
}

func (e *errAPI) Error() string {
	msg := fmt.Sprintf("kubernetes API: %s: %d %s: %s", e.what, e.status, http.StatusText(e.status), e.message)
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (the pod's service account needs a Role with get on pods and pods/log, bound by a RoleBinding)"
	}
	return msg
}

// permanent tells whether asking again cannot help.
func (e *errAPI) permanent() bool {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// get sends GET base+suffix?query with the pod's token.
func (s *kubernetesSource) get(ctx context.Context, what, suffix string, query url.Values) (*http.Response, error) {
	token, err := readToken(s.tokenPath)
	if err != nil {
		return nil, err
	}
	u := s.base + suffix
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API: %s: %w", what, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var status struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &status) != nil || status.Message == "" {
		status.Message = strings.TrimSpace(string(body))
	}
	return nil, &errAPI{what: what, status: resp.StatusCode, message: status.Message}
}

// podStatus returns the container's spec and status in the pod, and
// whether the container will not run again once terminated.
func (s *kubernetesSource) podStatus(ctx context.Context) (k8sContainer, *k8sContainerStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.get(ctx, "get pod "+s.namespace+"/"+s.pod, "", nil)
	if err != nil {
		return k8sContainer{}, nil, false, err
	}
	defer resp.Body.Close()
	var pod k8sPod
	if err := json.NewDecoder(resp.Body).Decode(&pod); err != nil {
		return k8sContainer{}, nil, false, fmt.Errorf("kubernetes API: get pod %s/%s: %w", s.namespace, s.pod, err)
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
		return k8sContainer{}, nil, false, &errAPI{what: "get pod " + s.namespace + "/" + s.pod, status: http.StatusNotFound,
			message: fmt.Sprintf("the pod has no container %q (its containers: %s)", s.container, strings.Join(names, ", "))}
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
		var apiErr *errAPI
		switch {
		case errors.As(err, &apiErr) && apiErr.permanent():
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
	var apiErr *errAPI
	return errors.As(err, &apiErr) && apiErr.status == http.StatusBadRequest
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
	resp, err := r.get(ctx, "get pods/log of "+r.namespace+"/"+r.pod, "/log", q)
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
