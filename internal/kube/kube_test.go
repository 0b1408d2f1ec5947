package kube

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI is an API server that serves one pod, ns1/pod1, as the JSON
// metadata it is given, after answering the first `fail` requests with 503.
// Like the real one it checks the bearer token.
type fakeAPI struct {
	srv      *httptest.Server
	token    string
	metadata map[string]any
	status   int // answered instead of the pod, when not 0
	fail     int32
	requests atomic.Int32
}

func newFakeAPI(t *testing.T, metadata map[string]any) *fakeAPI {
	t.Helper()
	a := &fakeAPI{token: "pod-token", metadata: metadata}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	a.srv.Config.ErrorLog = nil
	t.Cleanup(a.srv.Close)
	return a
}

func apiStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	n := a.requests.Add(1)
	switch {
	case r.Header.Get("Authorization") != "Bearer "+a.token:
		apiStatus(w, http.StatusUnauthorized, "Unauthorized")
	case r.URL.Path != "/api/v1/namespaces/ns1/pods/pod1":
		apiStatus(w, http.StatusNotFound, `pods "`+r.URL.Path+`" not found`)
	case n <= a.fail:
		apiStatus(w, http.StatusServiceUnavailable, "the server is currently unable to handle the request")
	case a.status != 0:
		apiStatus(w, a.status, `pods "pod1" is forbidden: User "system:serviceaccount:ns1:default" cannot get resource "pods" in API group "" in the namespace "ns1"`)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"kind": "Pod", "apiVersion": "v1", "metadata": a.metadata})
	}
}

// env writes the service account's files and returns the pod's
// environment.
func (a *fakeAPI) env(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(a.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "namespace"), []byte("ns1"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":      host,
		"KUBERNETES_SERVICE_PORT":      port,
		"POD_NAME":                     "pod1",
		"COLLECTOR_SERVICEACCOUNT_DIR": dir,
	}
}

func (a *fakeAPI) client(t *testing.T) *Client {
	t.Helper()
	env := a.env(t)
	c, err := FromEnv(func(n string) string { return env[n] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJobName(t *testing.T) {
	owner := func(apiVersion, kind, name string, controller bool) map[string]any {
		return map[string]any{"apiVersion": apiVersion, "kind": kind, "name": name, "uid": "u1", "controller": controller}
	}
	for _, tc := range []struct {
		name     string
		metadata map[string]any
		want     string
	}{
		{"Kubernetes 1.27 and later", map[string]any{"labels": map[string]any{
			"batch.kubernetes.io/job-name": "train", "job-name": "train", "controller-uid": "u1"},
			"ownerReferences": []any{owner("batch/v1", "Job", "train", true)}}, "train"},
		{"before 1.27: job-name only", map[string]any{"labels": map[string]any{"job-name": "train-old", "controller-uid": "u1"},
			"ownerReferences": []any{owner("batch/v1", "Job", "train-old", true)}}, "train-old"},
		{"manual selector: the owner", map[string]any{"labels": map[string]any{"app": "train"},
			"ownerReferences": []any{owner("batch/v1", "Job", "train-manual", true)}}, "train-manual"},
		{"a Deployment's pod", map[string]any{"labels": map[string]any{"app": "web"},
			"ownerReferences": []any{owner("apps/v1", "ReplicaSet", "web-5d8f", true)}}, ""},
		{"a Job that is not the controller", map[string]any{
			"ownerReferences": []any{owner("batch/v1", "Job", "other", false)}}, ""},
		{"a bare pod", map[string]any{"name": "pod1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newFakeAPI(t, tc.metadata).client(t).JobName(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("JobName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestJobNameRetries(t *testing.T) {
	defer func(lo, hi time.Duration) { retryMin, retryMax = lo, hi }(retryMin, retryMax)
	retryMin, retryMax = time.Millisecond, 4*time.Millisecond

	a := newFakeAPI(t, map[string]any{"labels": map[string]any{"job-name": "train"}})
	a.fail = 3
	got, err := a.client(t).JobName(context.Background())
	if err != nil || got != "train" {
		t.Fatalf("JobName = %q, %v; want train after the server's 503s", got, err)
	}
	if n := a.requests.Load(); n != 4 {
		t.Errorf("%d requests; want 3 answered 503, then the pod", n)
	}

	// A refusal is not asked again.
	a = newFakeAPI(t, nil)
	a.status = http.StatusForbidden
	_, err = a.client(t).JobName(context.Background())
	if err == nil || !strings.Contains(err.Error(), "get pod ns1/pod1: 403 Forbidden") || !strings.Contains(err.Error(), "needs a Role with get on pods") {
		t.Errorf("JobName refused: %v; want the 403 and the RBAC it needs", err)
	}
	if n := a.requests.Load(); n != 1 {
		t.Errorf("%d requests for a 403; want 1", n)
	}

	// A server that never answers well: the error once ctx ends.
	a = newFakeAPI(t, nil)
	a.fail = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.client(t).JobName(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("JobName with the server down: %v; want its 503", err)
	}
}

func TestFromEnvErrors(t *testing.T) {
	a := newFakeAPI(t, nil)
	good := a.env(t)
	noToken := t.TempDir()
	for _, tc := range []struct {
		name   string
		change map[string]string
		want   string
	}{
		{"no API server", map[string]string{"KUBERNETES_SERVICE_PORT": ""}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"},
		{"no pod name", map[string]string{"POD_NAME": ""}, "set POD_NAME (or COLLECTOR_POD_NAME) from the downward API"},
		{"no token", map[string]string{"COLLECTOR_SERVICEACCOUNT_DIR": noToken},
			"service-account token " + noToken + "/token: no such file or directory (the pod needs its service-account token: automountServiceAccountToken)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			for k, v := range tc.change {
				env[k] = v
			}
			_, err := FromEnv(func(n string) string { return env[n] })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromEnv: %v; want %q", err, tc.want)
			}
		})
	}
}
