package main

import (
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// podAPI is a Kubernetes API server that serves one pod, ns1/pod1, with the
// given labels, to a client with the pod's token, and the environment a
// container of that pod gets (its service account's files written to a
// folder that COLLECTOR_SERVICEACCOUNT_DIR names).
func podAPI(t *testing.T, labels map[string]string) map[string]string {
	t.Helper()
	const token = "pod-token"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Path != "/api/v1/namespaces/ns1/pods/pod1" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "code": 404, "message": "not found"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"kind": "Pod", "apiVersion": "v1",
			"metadata": map[string]any{"name": "pod1", "namespace": "ns1", "labels": labels}})
	}))
	srv.Config.ErrorLog = nil
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	writeFile(t, filepath.Join(dir, "ca.crt"), ca)
	writeFile(t, filepath.Join(dir, "token"), []byte(token))
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":      host,
		"KUBERNETES_SERVICE_PORT":      port,
		"POD_NAME":                     "pod1",
		"POD_NAMESPACE":                "ns1",
		"COLLECTOR_SERVICEACCOUNT_DIR": dir,
		// What the downward API gives for the label batch.kubernetes.io/job-name
		// before Kubernetes 1.27: nothing.
		"COLLECTOR_RUN": "",
	}
}

// TestRunNamedAfterThePodsJob: in a pod of a Job on a cluster older than
// Kubernetes 1.27 (only the label job-name), with no run name given, the
// run is the Job's, and a retry in a new pod resumes it: the outputs come
// back and the job sees attempt 2.
func TestRunNamedAfterThePodsJob(t *testing.T) {
	env := podAPI(t, map[string]string{"job-name": "train-old", "controller-uid": "0b6e"})
	store := filepath.Join(t.TempDir(), "store")
	job := `echo "$COLLECTOR_RUN $COLLECTOR_ATTEMPT" >> "$COLLECTOR_OUTPUTS_PATH/seen.txt"`
	for attempt, want := range []string{"train-old 1\n", "train-old 1\ntrain-old 2\n"} {
		pod := t.TempDir() // a new pod: empty outputs and state
		code, out := runInProcess(t, env, "--store", store, "--outputs-path", filepath.Join(pod, "outputs"),
			"--state-dir", filepath.Join(pod, "state"), "--sync-interval", "0", "--", "sh", "-c", job)
		if code != 0 {
			t.Fatalf("attempt %d: exit %d: %s", attempt+1, code, out)
		}
		got, err := os.ReadFile(filepath.Join(store, "train-old", "outputs", "seen.txt"))
		if err != nil || string(got) != want {
			t.Fatalf("attempt %d: train-old/outputs/seen.txt in the store: %q (%v); want %q", attempt+1, got, err, want)
		}
	}
	if runs := storeRuns(t, store); len(runs) != 1 {
		t.Errorf("runs in the store: %q; want train-old alone", runs)
	}
}

// storeRuns lists the runs in a host-path store.
func storeRuns(t *testing.T, store string) []string {
	t.Helper()
	entries, err := os.ReadDir(store)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var runs []string
	for _, e := range entries {
		runs = append(runs, e.Name())
	}
	return runs
}

// TestNoStableRunNameInAPod runs the binary in what looks like a pod with no
// run name: with autoResume on and no Job to name the run after, it exits 2
// before writing anything, naming the settings; with autoResume off, or
// outside a pod, the run is a new UUID as before.
func TestNoStableRunNameInAPod(t *testing.T) {
	// The wrapper form: no service-account token to read the pod with.
	noToken := map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
		"POD_NAME": "pod1", "POD_NAMESPACE": "ns1",
		"COLLECTOR_SERVICEACCOUNT_DIR": t.TempDir(), "COLLECTOR_RUN": "",
	}
	// A pod that no Job made.
	bare := podAPI(t, map[string]string{"app": "train"})
	outside := map[string]string{"KUBERNETES_SERVICE_HOST": "", "COLLECTOR_RUN": ""}
	advice := []string{
		"--run: no run name (--run, COLLECTOR_RUN)",
		"runs in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set) with autoResume on",
		"Set COLLECTOR_RUN", "metadata.labels['job-name']", "--auto-resume=false",
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"no token", noToken, nil, 2, append(advice, "The pod's Job could not be read instead: service-account token")},
		{"no Job", bare, nil, 2, append(advice, "pod ns1/pod1: no label batch.kubernetes.io/job-name or job-name and no Job owner")},
		{"autoResume off", noToken, []string{"--auto-resume=false"}, 0, nil},
		{"outside a pod", outside, nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			var env []string
			for k, v := range tc.env {
				env = append(env, k+"="+v)
			}
			args := append([]string{"--store", store, "--outputs-path", filepath.Join(dir, "outputs"),
				"--state-dir", filepath.Join(dir, "state"), "--sync-interval", "0"}, tc.args...)
			p := start(t, dir, env, append(args, "--", "true")...)
			code := p.wait(t, 60*time.Second)
			out := p.stderr.String()
			if code != tc.wantCode {
				t.Fatalf("exit %d; want %d; output:\n%s", code, tc.wantCode, out)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			runs := storeRuns(t, store)
			switch {
			case code == 2 && len(runs) != 0:
				t.Errorf("exit 2 with runs %q written to the store", runs)
			case code == 0 && (len(runs) != 1 || !uuid.MatchString(runs[0])):
				t.Errorf("runs in the store: %q; want one named by a new UUID", runs)
			}
		})
	}
}
