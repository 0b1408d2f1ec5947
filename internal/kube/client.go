package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlsidecar/collector/internal/errbody"
)

// ServiceAccountDir is where Kubernetes mounts a pod's service-account
// token, CA and namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InPod reports whether the process runs in a Kubernetes container: the
// kubelet gives every container KUBERNETES_SERVICE_HOST, whether or not it
// mounts a service-account token and whatever enableServiceLinks says.
func InPod(getenv func(string) string) bool {
	return strings.TrimSpace(getenv("KUBERNETES_SERVICE_HOST")) != ""
}

// Client reads the collector's own pod through the API server. It is safe
// for concurrent use.
type Client struct {
	Pod, Namespace string
	// Needs is what the pod's service account must be granted for the
	// caller's requests, named in a 401 or 403 error; "" is "get on pods".
	// Set it before the first request.
	Needs string

	podURL    string
	tokenPath string
	http      *http.Client
}

// FromEnv returns the client of the collector's pod. The API server is
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT; the pod is POD_NAME in
// POD_NAMESPACE (COLLECTOR_POD_NAME and COLLECTOR_POD_NAMESPACE win; the
// namespace also comes from the service account's namespace file); the token
// and CA are read from ServiceAccountDir, or the folder
// COLLECTOR_SERVICEACCOUNT_DIR names. Each error names the variable or file
// that is missing. The API server is reached only by Get.
func FromEnv(getenv func(string) string) (*Client, error) {
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
		dir = ServiceAccountDir
	}
	host, port := env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: the Kubernetes API is read from inside a pod")
	}
	pod := env("COLLECTOR_POD_NAME", "POD_NAME")
	if pod == "" {
		return nil, errors.New("the pod's name is unknown: set POD_NAME (or COLLECTOR_POD_NAME) from the downward API (valueFrom.fieldRef.fieldPath: metadata.name)")
	}
	tokenPath := filepath.Join(dir, "token")
	if _, err := readToken(tokenPath); err != nil {
		return nil, fmt.Errorf("%v (the pod needs its service-account token: automountServiceAccountToken)", err)
	}
	ns := env("COLLECTOR_POD_NAMESPACE", "POD_NAMESPACE")
	if ns == "" {
		b, err := os.ReadFile(filepath.Join(dir, "namespace"))
		if ns = strings.TrimSpace(string(b)); err != nil || ns == "" {
			return nil, fmt.Errorf("the pod's namespace is unknown: set POD_NAMESPACE (or COLLECTOR_POD_NAMESPACE) from the downward API (valueFrom.fieldRef.fieldPath: metadata.namespace); %s gives none", filepath.Join(dir, "namespace"))
		}
	}
	caPath := filepath.Join(dir, "ca.crt")
	pem, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("the API server's CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the API server's CA: %s holds no PEM certificate", caPath)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        2,
		IdleConnTimeout:     60 * time.Second,
	}
	return &Client{
		Pod:       pod,
		Namespace: ns,
		podURL:    "https://" + net.JoinHostPort(host, port) + "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod),
		tokenPath: tokenPath,
		http:      &http.Client{Transport: transport},
	}, nil
}

// readToken reads the service-account token; the kubelet rotates it in
// place, so it is read again for every request.
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

// Error is an answer of the API server other than 200: its status and the
// message of its Status body.
type Error struct {
	Op      string // "get pod ns/name"
	Status  int
	Message string
	needs   string // Client.Needs
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("kubernetes API: %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		needs := e.needs
		if needs == "" {
			needs = "get on pods"
		}
		msg += " (the pod's service account needs a Role with " + needs + ", bound by a RoleBinding)"
	}
	return msg
}

// Permanent tells whether asking again cannot help.
func (e *Error) Permanent() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// Get sends GET to the pod's URL followed by suffix ("" for the pod itself,
// "/log" for its log) with query, and returns the response to a 200; any
// other status is an *Error. The caller closes the body.
func (c *Client) Get(ctx context.Context, op, suffix string, query url.Values) (*http.Response, error) {
	token, err := readToken(c.tokenPath)
	if err != nil {
		return nil, err
	}
	u := c.podURL + suffix
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API: %s: %w", op, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, &Error{Op: op, Status: resp.StatusCode, Message: errbody.Message(resp.Body), needs: c.Needs}
}

// GetPod decodes the pod into v, a struct of the fields the caller reads.
func (c *Client) GetPod(ctx context.Context, v any) error {
	op := "get pod " + c.Namespace + "/" + c.Pod
	resp, err := c.Get(ctx, op, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("kubernetes API: %s: %w", op, err)
	}
	return nil
}
