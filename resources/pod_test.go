package resources

import (
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/kube"
)

// fakePodAPI is an API server that serves one pod, ns1/pod1, whose job
// container's status the test sets, with its limits in the spec. Like the
// real one it checks the bearer token.
type fakePodAPI struct {
	srv *httptest.Server
	mu  stdsync.Mutex
	uid string
	// status is the job container's status (containerStatuses[0]).
	status  map[string]any
	deleted bool
	refuse  int           // answered instead of the pod, when not 0
	reads   int           // requests served
	read    chan struct{} // closed and replaced at every request
}

func newFakePodAPI(t *testing.T) *fakePodAPI {
	t.Helper()
	a := &fakePodAPI{uid: "uid-1", status: running(0, nil), read: make(chan struct{})}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	a.srv.Config.ErrorLog = nil
	t.Cleanup(a.srv.Close)
	return a
}

// running is a container's status running after restarts, its previous
// instance's termination last (or none).
func running(restarts int, last map[string]any) map[string]any {
	st := map[string]any{"name": "job", "restartCount": restarts, "state": map[string]any{"running": map[string]any{"startedAt": "2026-12-06T04:00:00Z"}}}
	if last != nil {
		st["lastState"] = map[string]any{"terminated": last}
	}
	return st
}

func terminated(reason string, code int) map[string]any {
	return map[string]any{"reason": reason, "exitCode": code, "startedAt": "2026-12-06T04:00:00Z", "finishedAt": "2026-12-06T04:01:00Z", "containerID": "containerd://abc"}
}

func (a *fakePodAPI) set(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}

func (a *fakePodAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads++
	close(a.read)
	a.read = make(chan struct{})
	if r.Header.Get("Authorization") != "Bearer pod-token" || r.URL.Path != "/api/v1/namespaces/ns1/pods/pod1" || a.refuse != 0 {
		code := http.StatusUnauthorized
		if a.refuse != 0 {
			code = a.refuse
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "message": `pods "pod1" is forbidden`, "code": code})
		return
	}
	meta := map[string]any{"name": "pod1", "namespace": "ns1", "uid": a.uid}
	if a.deleted {
		meta["deletionTimestamp"] = "2026-12-06T04:02:00Z"
	}
	pod := map[string]any{
		"kind": "Pod", "apiVersion": "v1", "metadata": meta,
		"spec": map[string]any{
			"initContainers": []any{map[string]any{"name": "collector", "restartPolicy": "Always",
				"resources": map[string]any{"limits": map[string]any{"memory": "160Mi"}}}},
			"containers": []any{map[string]any{"name": "job", "image": "python:3.12-slim",
				"resources": map[string]any{"limits": map[string]any{"memory": "512Mi", "cpu": "1500m"}, "requests": map[string]any{"cpu": "1"}}}},
		},
		"status": map[string]any{"phase": "Running",
			"initContainerStatuses": []any{map[string]any{"name": "collector", "restartCount": 0, "state": map[string]any{"running": map[string]any{}}}},
			"containerStatuses":     []any{a.status}},
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(pod)
}

// client is internal/kube's client of the pod, as cmd/collector wires it.
func (a *fakePodAPI) client(t *testing.T) *kube.Client {
	t.Helper()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte("pod-token\n"), 0o600)
	host, port, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	env := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
		"POD_NAME": "pod1", "POD_NAMESPACE": "ns1", "COLLECTOR_SERVICEACCOUNT_DIR": dir}
	c, err := kube.FromEnv(func(n string) string { return env[n] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// podRig is a sidecar's sampler in a container (a fake /proc of one job
// process) that reads its pod from api, every sample.
func podRig(t *testing.T, api *fakePodAPI, state *memState, attempt int) *rig {
	t.Helper()
	every := podReadEvery
	podReadEvery = 0
	t.Cleanup(func() { podReadEvery = every })
	return newRig(t, newStore(t), t.TempDir(), state, Config{Attempt: attempt, Interval: 50 * time.Millisecond,
		ProcDir: newFakeProc(t, 1, 2, false).dir, Pod: api.client(t)})
}

// waitReads waits until the API has been read n more times.
func (a *fakePodAPI) waitReads(t *testing.T, n int) {
	t.Helper()
	a.mu.Lock()
	want := a.reads + n
	a.mu.Unlock()
	timeout := time.After(10 * time.Second)
	for {
		a.mu.Lock()
		got, next := a.reads, a.read
		a.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-next:
		case <-timeout:
			t.Fatalf("the pod was not read %d more times in 10 s", n)
		}
	}
}

// TestPodStatus: a native sidecar reads the job container's memory and CPU
// limits, its OOM kill, its restart and its exit code from the pod through
// the Kubernetes API, into the samples and summary.json, and counts the
// OOM kill once though the API shows it at every read after it.
func TestPodStatus(t *testing.T) {
	api := newFakePodAPI(t)
	r := podRig(t, api, &memState{}, 1)
	stop := r.start()
	api.waitReads(t, 2)
	// OOM-killed, and restarted: the API shows it as the last state.
	api.set(func() { api.status = running(1, terminated("OOMKilled", 137)) })
	api.waitReads(t, 3)
	// The job ends; the kubelet reports it a moment after the sidecar's
	// SIGTERM: the last sample waits for it. Two reads after the stop, the
	// last sample has read the pod running at least once.
	stopped := make(chan struct{})
	go func() { defer close(stopped); stop() }()
	api.waitReads(t, 2)
	api.set(func() {
		st := running(1, terminated("OOMKilled", 137))
		st["state"] = map[string]any{"terminated": terminated("Completed", 0)}
		api.status = st
	})
	<-stopped

	s := r.summary()
	b, _ := json.MarshalIndent(s.Kubernetes, "", "  ")
	t.Logf("summary.json kubernetes: %s", b)
	if s.Kubernetes == nil || len(s.Kubernetes.Containers) != 1 {
		t.Fatalf("kubernetes = %s, want the job's container", b)
	}
	c := s.Kubernetes.Containers[0]
	if c.Name != "job" || c.MemoryLimitBytes != 512<<20 || c.CPULimitCores != 1.5 || c.Restarts != 1 ||
		c.ExitCode == nil || *c.ExitCode != 0 || c.Terminations != 2 || c.OOMKills != 1 || s.Kubernetes.Pod != "pod1" {
		t.Errorf("kubernetes = %s; want the job: 512 MiB, 1.5 cores, 1 restart, exit code 0, 2 terminations, 1 OOM kill", b)
	}
	if s.Memory.OOMKills != 1 || s.Memory.OOMKillLimitBytes != 512<<20 || s.Memory.LastOOMKill.IsZero() {
		t.Errorf("memory = %+v, want 1 OOM kill at the 512 MiB limit", s.Memory)
	}
	if n := strings.Count(r.logs.String(), `level=WARN msg="the OOM killer killed the job's container" component=resources container=job kills=1 memory_limit=512Mi`); n != 1 {
		t.Errorf("the log warns of the OOM kill %d times, want once:\n%s", n, r.logs)
	}
	// The series: every record has the limits; the kill is in one.
	recs := r.series()
	kills := 0.0
	for i, rec := range recs {
		if rec["k8s_job_memory_limit_bytes"] != float64(512<<20) || rec["k8s_job_cpu_limit_cores"] != 1.5 {
			t.Fatalf("record %d: no limits: %v", i, rec)
		}
		kills += rec["k8s_job_oom_kills"].(float64)
	}
	if last := recs[len(recs)-1]; kills != 1 || last["k8s_job_exit_code"] != 0.0 || last["k8s_job_restarts"] != 1.0 {
		t.Errorf("the series counts %v OOM kills, its last record %v; want 1, exit code 0, 1 restart", kills, last)
	}
}

// TestPodStatusOnRestart: a collector that starts again in the same pod
// does not count again the OOM kill the API still shows; one in a new pod
// (a retried Job) counts that pod's.
func TestPodStatusOnRestart(t *testing.T) {
	api := newFakePodAPI(t)
	api.status = running(1, terminated("OOMKilled", 137))
	api.deleted = true // each collector is stopped with its pod: the last sample does not wait for the job
	state := &memState{}
	for attempt, uid := range []string{"uid-1", "uid-1", "uid-2"} {
		api.set(func() { api.uid = uid })
		r := podRig(t, api, state, attempt+1)
		stop := r.start()
		api.waitReads(t, 2)
		stop()
		if got, want := r.summary().Memory.OOMKills, float64(1+attempt/2); got != want {
			t.Errorf("attempt %d (pod %s): oom_kills = %v, want %v", attempt+1, uid, got, want)
		}
	}
}

// TestPodStatusRefused: a pod the API refuses to show (RBAC without get on
// pods) leaves the source out, saying why, once.
func TestPodStatusRefused(t *testing.T) {
	api := newFakePodAPI(t)
	api.refuse = http.StatusForbidden
	r := podRig(t, api, &memState{}, 1)
	stop := r.start()
	r.waitSamples(3)
	stop()
	if n := strings.Count(r.logs.String(), "no pod status: kubernetes API: get pod ns1/pod1: 403"); n != 1 {
		t.Errorf("the log says \"no pod status\" %d times, want once:\n%s", n, r.logs)
	}
	if s := r.summary(); s.Kubernetes != nil {
		t.Errorf("kubernetes = %+v with no pod read", s.Kubernetes)
	}
}

func TestParseQuantity(t *testing.T) {
	for q, want := range map[string]float64{
		"512Mi": 512 << 20, "1Gi": 1 << 30, "1.5Gi": 1.5 * (1 << 30), "1G": 1e9, "128974848": 128974848, "129e6": 129e6,
		"500m": 0.5, "2": 2, "0.25": 0.25, "100k": 1e5, "1e3": 1000,
	} {
		if got, err := parseQuantity(q); err != nil || got != want {
			t.Errorf("parseQuantity(%q) = %v, %v; want %v", q, got, err, want)
		}
	}
	for _, q := range []string{"", "Mi", "abc", "-1"} {
		if _, err := parseQuantity(q); err == nil {
			t.Errorf("parseQuantity(%q): no error", q)
		}
	}
}
