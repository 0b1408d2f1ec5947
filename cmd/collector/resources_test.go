package main

import (
	"compress/gzip"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCollectResources: by default a wrapped command's resources are in
// <run>/resources/ (chunks and a final summary.json); collectResources:
// false writes nothing there.
func TestCollectResources(t *testing.T) {
	tests := []struct {
		name    string
		plugins string
		want    bool
	}{
		{"on by default", "", true},
		{"collectResources false", "plugins:\n  collectResources: false\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			args := []string{"--store", store, "--run", "r", "--outputs-path", filepath.Join(dir, "outputs"),
				"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0.1", "--sync-interval", "1"}
			if tt.plugins != "" {
				f := filepath.Join(dir, "plugins.yaml")
				if err := os.WriteFile(f, []byte(tt.plugins), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--plugins", f)
			}
			args = append(args, "--", "sh", "-c", "sleep 0.5")
			code, out := runInProcess(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit code %d:\n%s", code, out)
			}
			res := filepath.Join(store, "r", "resources")
			if !tt.want {
				if _, err := os.Stat(res); !os.IsNotExist(err) {
					ents, _ := os.ReadDir(res)
					t.Fatalf("%s exists (%v entries), want nothing under <run>/resources/", res, len(ents))
				}
				return
			}
			b, err := os.ReadFile(filepath.Join(res, "summary.json"))
			if err != nil {
				t.Fatalf("summary.json: %v\n%s", err, out)
			}
			var s struct {
				Final   bool `json:"final"`
				Samples int  `json:"samples"`
			}
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if !s.Final || s.Samples < 3 {
				t.Errorf("summary.json: final %v, %d samples; want final, 3 or more samples in 0.5 s at 0.1 s", s.Final, s.Samples)
			}
			chunks, _ := filepath.Glob(filepath.Join(res, "*.jsonl.gz"))
			if len(chunks) == 0 {
				t.Errorf("no chunk in %s", res)
			}
		})
	}
}

// TestResourcesIntervalBadInput: an interval too short to be useful is
// refused at start, naming the setting.
func TestResourcesIntervalBadInput(t *testing.T) {
	dir := t.TempDir()
	code, out := runInProcess(t, nil, "--store", filepath.Join(dir, "store"), "--outputs-path", filepath.Join(dir, "outputs"),
		"--resources-interval", "0.01")
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	want := "--resources-interval: 0.01 is below 0.1; want 0.1 seconds or more, or 0 to turn sampling off"
	if !strings.Contains(out, want) {
		t.Errorf("output %q, want it to say %q", out, want)
	}
}

// TestResourcesContainerBadInput: a container to measure needs the docker
// plugin and a valid name.
func TestResourcesContainerBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, want string }{
		{"job", `--resources-container: "job" needs the docker plugin (plugins: docker: true in --plugins)`},
		{"-job", `--resources-container: "-job" is not a container's name or ID`},
	}
	for _, tt := range tests {
		code, out := runInProcess(t, nil, "--store", filepath.Join(dir, "store"), "--outputs-path", filepath.Join(dir, "outputs"),
			"--resources-container="+tt.name)
		if code != exitUsage || !strings.Contains(out, tt.want) {
			t.Errorf("--resources-container=%s: exit code %d, output %q; want %d and %q", tt.name, code, out, exitUsage, tt.want)
		}
	}
}

// TestResourcesJobBadInput: a process or cgroup to measure that is not one
// is refused at start (exit 2), naming the setting, writing nothing.
func TestResourcesJobBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string // the --config file
		want []string
	}{
		{name: "not a pid", args: []string{"--resources-pid", "job"}, want: []string{"-resources-pid", `"job" is not a process ID; want a positive integer`}},
		{name: "zero", args: []string{"--resources-pid", "12,0"}, want: []string{"-resources-pid", `"0" is not a process ID`}},
		{name: "env", env: map[string]string{"COLLECTOR_RESOURCES_PID": "12;13"}, want: []string{"COLLECTOR_RESOURCES_PID", `"12;13" is not a process ID`}},
		{name: "config file", file: "resources-pid: [12, -1]\n", want: []string{"resources-pid", `"-1" is not a process ID`}},
		{name: "no such cgroup", args: []string{"--resources-cgroup", "/no/such/job.scope"}, want: []string{"--resources-cgroup: /no/such/job.scope: no such cgroup", "as /proc/PID/cgroup names it"}},
		{name: "relative cgroup", env: map[string]string{"COLLECTOR_RESOURCES_CGROUP": "system.slice/job.service"}, want: []string{"--resources-cgroup", `"system.slice/job.service" is not a clean absolute path`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			args := append([]string{"--store", store, "--run", "r", "--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state")}, tt.args...)
			if tt.file != "" {
				f := filepath.Join(dir, "config.yaml")
				os.WriteFile(f, []byte(tt.file), 0o644)
				args = append(args, "--config", f)
			}
			code, out := runInProcess(t, tt.env, args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; output %q", code, exitUsage, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q, want it to say %q", out, w)
				}
			}
			assertEmpty(t, store)
		})
	}
}

// TestResourcesJobSettings: --resources-pid is repeatable and
// comma-separated, from a flag, the environment or the config file;
// --resources-cgroup takes a cgroup of this machine.
func TestResourcesJobSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("resources-pid: [7, 8]\nresources-cgroup: /\n"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flags", []string{"--resources-pid", "7", "--resources-pid=8,9"}, nil, "[7 8 9]"},
		{"env", nil, map[string]string{"COLLECTOR_RESOURCES_PID": "7, 8"}, "[7 8]"},
		{"file", []string{"--config", cfg}, nil, "[7 8]"},
		{"flag over env", []string{"--resources-pid", "9"}, map[string]string{"COLLECTOR_RESOURCES_PID": "7"}, "[9]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadSettings(append([]string{"--outputs-path", dir, "--run", "r"}, tt.args...), func(n string) string { return tt.env[n] })
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(s.ResourcesPIDs); got != tt.want {
				t.Errorf("ResourcesPIDs = %s, want %s", got, tt.want)
			}
			if tt.name == "file" && s.ResourcesCgroup != "/" {
				t.Errorf("ResourcesCgroup = %q, want /", s.ResourcesCgroup)
			}
		})
	}
}

// sidecarRecords runs the collector as a sidecar with args and env, and
// returns its log, its resource records and its summary.json.
func sidecarRecords(t *testing.T, env []string, args ...string) (string, []map[string]any, map[string]any) {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	p := start(t, dir, env, append([]string{"--store", store, "--run", "r", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0.2", "--sync-interval", "1"}, args...)...)
	summary := filepath.Join(store, "r", "resources", "summary.json")
	waitFor(t, 20*time.Second, "a first summary.json", func() bool { _, err := os.Stat(summary); return err == nil })
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.stderr)
	}
	var recs []map[string]any
	chunks, _ := filepath.Glob(filepath.Join(store, "r", "resources", "*.jsonl.gz"))
	for _, c := range chunks {
		f, err := os.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(zr)
		for {
			var rec map[string]any
			if err := dec.Decode(&rec); err != nil {
				break
			}
			recs = append(recs, rec)
		}
		f.Close()
	}
	var sum map[string]any
	b, _ := os.ReadFile(summary)
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if len(recs) == 0 {
		t.Fatalf("no records in %v:\n%s", chunks, p.stderr)
	}
	return p.stderr.String(), recs, sum
}

// TestSidecarMeasuresTheJob: a sidecar outside a container (this machine)
// does not take every process of the host for the job: it measures none and
// says so, or, with --resources-pid, that process and its descendants.
func TestSidecarMeasuresTheJob(t *testing.T) {
	if _, err := os.Stat("/proc/2/stat"); err != nil {
		t.Skip("this machine's tests run in a container's process namespace")
	}
	t.Run("not told", func(t *testing.T) {
		log, recs, _ := sidecarRecords(t, nil)
		if !strings.Contains(log, `job="no process: the collector sees the host's processes`) || !strings.Contains(log, "--resources-pid or --resources-cgroup") {
			t.Errorf("the log does not say that nothing is measured:\n%s", log)
		}
		for _, rec := range recs {
			if n, ok := rec["processes"]; ok {
				t.Fatalf("the host's %v processes measured as the job", n)
			}
		}
	})
	t.Run("--resources-pid", func(t *testing.T) {
		job := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
		if err := job.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { job.Process.Kill(); job.Wait() })
		pid := strconv.Itoa(job.Process.Pid)
		log, recs, _ := sidecarRecords(t, nil, "--resources-pid", pid)
		if !strings.Contains(log, `job="processes `+pid+` and their descendants"`) {
			t.Errorf("the log does not say what is measured:\n%s", log)
		}
		if n := recs[len(recs)-1]["processes"]; n != 3.0 {
			t.Errorf("processes = %v, want the shell and its 2 sleeps", n)
		}
	})
}

// TestSidecarPodStatus: a sidecar in a Kubernetes pod reads the job's
// container from the pod (the wiring of internal/kube's client into the
// resources): its OOM kill, exit code and memory limit are in summary.json.
func TestSidecarPodStatus(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pod-token" || r.URL.Path != "/api/v1/namespaces/ns1/pods/pod1" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		terminated := map[string]any{"terminated": map[string]any{"reason": "OOMKilled", "exitCode": 137}}
		json.NewEncoder(w).Encode(map[string]any{"kind": "Pod", "apiVersion": "v1",
			"metadata": map[string]any{"name": "pod1", "namespace": "ns1", "uid": "u1"},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "job",
				"resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}}}},
			"status": map[string]any{"phase": "Failed", "containerStatuses": []any{
				map[string]any{"name": "job", "restartCount": 0, "state": terminated}}},
		})
	}))
	srv.Config.ErrorLog = nil
	t.Cleanup(srv.Close)
	sa := t.TempDir()
	os.WriteFile(filepath.Join(sa, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	os.WriteFile(filepath.Join(sa, "token"), []byte("pod-token"), 0o600)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	env := []string{"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port, "POD_NAME=pod1", "POD_NAMESPACE=ns1", "COLLECTOR_SERVICEACCOUNT_DIR=" + sa}

	_, recs, sum := sidecarRecords(t, env)
	b, _ := json.Marshal(sum["kubernetes"])
	var k struct {
		Containers []struct {
			Name             string   `json:"name"`
			ExitCode         *float64 `json:"exit_code"`
			MemoryLimitBytes float64  `json:"memory_limit_bytes"`
			OOMKills         float64  `json:"oom_kills"`
		} `json:"containers"`
	}
	json.Unmarshal(b, &k)
	if len(k.Containers) != 1 || k.Containers[0].Name != "job" || k.Containers[0].ExitCode == nil || *k.Containers[0].ExitCode != 137 ||
		k.Containers[0].MemoryLimitBytes != 1<<30 || k.Containers[0].OOMKills != 1 {
		t.Errorf("summary.json kubernetes: %s, want the job's container: exit code 137, 1 GiB limit, 1 OOM kill", b)
	}
	if mem := sum["memory"].(map[string]any); mem["oom_kills"] != 1.0 || mem["oom_kill_limit_bytes"] != float64(1<<30) {
		t.Errorf("summary.json memory: %v, want 1 OOM kill at 1 GiB", mem)
	}
	if rec := recs[0]; rec["k8s_job_exit_code"] != 137.0 {
		t.Errorf("the first record: %v, want k8s_job_exit_code 137", rec)
	}
}
