package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/docker/dockertest"
	"github.com/mlsidecar/collector/internal/tracking"
)

// pluginRun is one wrapper-mode run with a plugins file, into a host-path
// store: what the command saw and what the store holds.
type pluginRun struct {
	code     int
	out      string            // the collector's output
	env      map[string]string // the command's environment
	args     string            // the command's expanded arguments
	store    string            // the store's folder
	run      string
	outputs  string
	objects  map[string]bool // files under <store>/<run>/, by path relative to it
	requests []apiRequest    // what the tracking API servers received
}

type apiRequest struct {
	server string // "internal" or "external"
	auth   string
	status tracking.Status
}

// runWithPlugins runs `sh -c` in wrapper mode with the given plugins file
// body and extra flags, with two tracking API servers listening.
func runWithPlugins(t *testing.T, pluginsYAML string, extra ...string) pluginRun {
	t.Helper()
	work := t.TempDir()
	var mu stdsync.Mutex
	var reqs []apiRequest
	api := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var st tracking.Status
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, &st); err != nil {
				t.Errorf("%s API got %q: %v", name, body, err)
			}
			mu.Lock()
			reqs = append(reqs, apiRequest{server: name, auth: r.Header.Get("Authorization"), status: st})
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	internal, external := api("internal"), api("external")
	pr := pluginRun{store: filepath.Join(work, "store"), run: "plugins-run", outputs: filepath.Join(work, "outputs")}
	plugins := filepath.Join(work, "plugins.yaml")
	if err := os.WriteFile(plugins, []byte(pluginsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(work, "token")
	os.WriteFile(token, []byte("tok-123\n"), 0o600)
	script := `env > "$COLLECTOR_OUTPUTS_PATH/env.txt"; echo "$1" > "$COLLECTOR_OUTPUTS_PATH/args.txt"; echo "a line for the logs"`
	args := append([]string{
		"--plugins", plugins, "--store", pr.store, "--run", pr.run, "--outputs-path", pr.outputs,
		"--state-dir", filepath.Join(work, "state"), "--api-url", internal.URL, "--api-external-url", external.URL,
		"--api-token-file", token, "--resources-interval", "0.2",
	}, extra...)
	args = append(args, "--", "sh", "-c", script, "sh", "{{run_outputs_path}}|{{run_artifacts_path}}|{{run_uuid}}")
	pr.code, pr.out = runInProcess(t, map[string]string{"DOCKER_HOST": os.Getenv("DOCKER_HOST")}, args...)
	pr.env = map[string]string{}
	if data, err := os.ReadFile(filepath.Join(pr.outputs, "env.txt")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				pr.env[k] = v
			}
		}
	}
	data, _ := os.ReadFile(filepath.Join(pr.outputs, "args.txt"))
	pr.args = strings.TrimSpace(string(data))
	pr.objects = map[string]bool{}
	root := filepath.Join(pr.store, pr.run)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			pr.objects[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	mu.Lock()
	pr.requests = append([]apiRequest(nil), reqs...)
	mu.Unlock()
	return pr
}

// resourceRecords returns the resource samples the store holds, as text.
func resourceRecords(t *testing.T, p pluginRun) string {
	t.Helper()
	var all strings.Builder
	for rel := range p.objects {
		if !strings.HasPrefix(rel, "resources/") || !strings.HasSuffix(rel, ".jsonl.gz") {
			continue
		}
		f, err := os.Open(filepath.Join(p.store, p.run, rel))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(zr)
		f.Close()
		all.Write(data)
	}
	return all.String()
}

func (p pluginRun) has(prefix string) bool {
	for k := range p.objects {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// TestPluginsKeys turns each plugins key on and off and checks what changes
// where a user would look: the store, the command's environment and
// arguments, the collector's log, the tracking API's requests.
func TestPluginsKeys(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {}\n")
		if p.code != 0 {
			t.Fatalf("exit %d:\n%s", p.code, p.out)
		}
		if !p.objects["outputs/env.txt"] {
			t.Errorf("collectArtifacts on: outputs/env.txt not in the store: %v", p.objects)
		}
		if _, ok := p.env["LOG_LEVEL"]; ok {
			t.Error("LOG_LEVEL set without logLevel")
		}
		if p.env["COLLECTOR_ARTIFACTS_STORE_PATH"] != p.store {
			t.Errorf("mountArtifactsStore is on by default (the seed's default), but the command got COLLECTOR_ARTIFACTS_STORE_PATH=%q, want %q", p.env["COLLECTOR_ARTIFACTS_STORE_PATH"], p.store)
		}
		// auth on: the token goes to the API and to the command.
		if p.env["COLLECTOR_AUTH_TOKEN"] != "tok-123" || p.env["COLLECTOR_API_URL"] == "" {
			t.Errorf("auth on: command env COLLECTOR_AUTH_TOKEN=%q COLLECTOR_API_URL=%q", p.env["COLLECTOR_AUTH_TOKEN"], p.env["COLLECTOR_API_URL"])
		}
		if len(p.requests) < 2 {
			t.Fatalf("tracking API got %d requests, want started and the end", len(p.requests))
		}
		first, last := p.requests[0], p.requests[len(p.requests)-1]
		if first.status.Status != tracking.Started || last.status.Status != tracking.Succeeded || last.status.ExitCode == nil || *last.status.ExitCode != 0 {
			t.Errorf("statuses: first %+v, last %+v", first.status, last.status)
		}
		for _, r := range p.requests {
			if r.server != "internal" || r.auth != "Bearer tok-123" || r.status.Run != "plugins-run" {
				t.Errorf("request %+v: want the internal URL, the bearer token, the run", r)
			}
		}
		abs, _ := filepath.Abs(p.outputs)
		if want := abs + "|" + filepath.Join(p.store, "plugins-run") + "|plugins-run"; p.args != want {
			t.Errorf("context variables expanded to %q, want %q", p.args, want)
		}
	})
	t.Run("collectLogs and collectResources", func(t *testing.T) {
		on := runWithPlugins(t, "plugins: {}\n")
		if !on.has("logs/") || !on.has("resources/") {
			t.Errorf("defaults: logs in the store %v, resources %v, want both", on.has("logs/"), on.has("resources/"))
		}
		off := runWithPlugins(t, "plugins: {collectLogs: false, collectResources: false}\n")
		if off.code != 0 || off.has("logs/") || off.has("resources/") {
			t.Errorf("collectLogs and collectResources off: exit %d, store holds %v", off.code, off.objects)
		}
	})
	t.Run("autoResume", func(t *testing.T) {
		work := t.TempDir()
		store := filepath.Join(work, "store")
		attempt := func(plugins string, n int) (int, string, string) {
			p := filepath.Join(work, fmt.Sprintf("plugins-%d.yaml", n))
			os.WriteFile(p, []byte(plugins), 0o644)
			out := filepath.Join(work, fmt.Sprintf("outputs-%d", n))
			code, log := runInProcess(t, nil, "--plugins", p, "--store", store, "--run", "r", "--outputs-path", out,
				"--state-dir", filepath.Join(work, fmt.Sprintf("state-%d", n)), "--", "sh", "-c", fmt.Sprintf(`echo %d > "$COLLECTOR_OUTPUTS_PATH/attempt-%d.txt"`, n, n))
			return code, out, log
		}
		if code, _, log := attempt("plugins: {}\n", 1); code != 0 {
			t.Fatalf("attempt 1: exit %d:\n%s", code, log)
		}
		_, out2, _ := attempt("plugins: {autoResume: true}\n", 2)
		if _, err := os.Stat(filepath.Join(out2, "attempt-1.txt")); err != nil {
			t.Errorf("autoResume on: attempt 1's file not restored: %v", err)
		}
		_, out3, _ := attempt("plugins: {autoResume: false}\n", 3)
		if _, err := os.Stat(filepath.Join(out3, "attempt-1.txt")); err == nil {
			t.Error("autoResume off: attempt 1's file was restored")
		}
		if _, err := os.Stat(filepath.Join(store, "r", "outputs", "attempt-1.txt")); err != nil {
			t.Errorf("autoResume off: attempt 1's object is gone from the store: %v", err)
		}
	})
	t.Run("collectArtifacts off", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {collectArtifacts: false}\n")
		if p.code != 0 || p.has("outputs/") {
			t.Errorf("exit %d, outputs in the store: %v", p.code, p.objects)
		}
	})
	t.Run("logLevel", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {logLevel: debug}\n")
		if p.env["LOG_LEVEL"] != "debug" || p.env["POLYAXON_LOG_LEVEL"] != "debug" {
			t.Errorf("command env LOG_LEVEL=%q POLYAXON_LOG_LEVEL=%q, want debug", p.env["LOG_LEVEL"], p.env["POLYAXON_LOG_LEVEL"])
		}
		if !strings.Contains(p.out, "level=DEBUG") {
			t.Errorf("the collector logs no debug line at logLevel debug:\n%s", p.out)
		}
		q := runWithPlugins(t, "plugins: {logLevel: warning}\n")
		if strings.Contains(q.out, "level=INFO") || strings.Contains(q.out, "level=DEBUG") {
			t.Errorf("info or debug lines at logLevel warning:\n%s", q.out)
		}
	})
	t.Run("sidecar.syncInterval", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {sidecar: {syncInterval: 7}}\n")
		if !strings.Contains(p.out, "sync_interval=7") {
			t.Errorf("sidecar.syncInterval 7 not in effect:\n%s", p.out)
		}
		q := runWithPlugins(t, "plugins: {sidecar: {syncInterval: 7}}\n", "--sync-interval", "3")
		if !strings.Contains(q.out, "sync_interval=3") {
			t.Errorf("--sync-interval does not win over sidecar.syncInterval:\n%s", q.out)
		}
	})
	t.Run("mountArtifactsStore", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {mountArtifactsStore: true}\n")
		if p.env["COLLECTOR_ARTIFACTS_STORE_PATH"] != p.store || p.env["COLLECTOR_RUN_ARTIFACTS_PATH"] != filepath.Join(p.store, "plugins-run") {
			t.Errorf("command env COLLECTOR_ARTIFACTS_STORE_PATH=%q COLLECTOR_RUN_ARTIFACTS_PATH=%q, want %q and its run folder",
				p.env["COLLECTOR_ARTIFACTS_STORE_PATH"], p.env["COLLECTOR_RUN_ARTIFACTS_PATH"], p.store)
		}
		off := runWithPlugins(t, "plugins: {mountArtifactsStore: false}\n")
		if v, ok := off.env["COLLECTOR_ARTIFACTS_STORE_PATH"]; ok {
			t.Errorf("mountArtifactsStore off: the command got COLLECTOR_ARTIFACTS_STORE_PATH=%q", v)
		}
	})
	t.Run("auth off", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {auth: false}\n")
		if _, ok := p.env["COLLECTOR_AUTH_TOKEN"]; ok {
			t.Error("auth off: the command got the token")
		}
		if len(p.requests) == 0 {
			t.Fatal("auth off: no status reported")
		}
		for _, r := range p.requests {
			if r.auth != "" {
				t.Errorf("auth off: Authorization %q sent", r.auth)
			}
		}
	})
	t.Run("externalHost", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {externalHost: true}\n")
		if len(p.requests) == 0 {
			t.Fatal("no status reported")
		}
		for _, r := range p.requests {
			if r.server != "external" {
				t.Errorf("externalHost on: a request went to the %s URL", r.server)
			}
		}
	})
	t.Run("command failure is reported", func(t *testing.T) {
		work := t.TempDir()
		var mu stdsync.Mutex
		var last tracking.Status
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			json.NewDecoder(r.Body).Decode(&last)
		}))
		defer srv.Close()
		code, out := runInProcess(t, nil, "--store", filepath.Join(work, "store"), "--run", "r", "--outputs-path", filepath.Join(work, "o"),
			"--state-dir", filepath.Join(work, "s"), "--api-url", srv.URL, "--", "sh", "-c", "exit 3")
		mu.Lock()
		defer mu.Unlock()
		if code != 3 || last.Status != tracking.Failed || last.ExitCode == nil || *last.ExitCode != 3 {
			t.Errorf("exit %d, last status %+v; want 3 reported as failed:\n%s", code, last, out)
		}
	})
	t.Run("an API that is down fails nothing", func(t *testing.T) {
		work := t.TempDir()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }))
		defer srv.Close()
		code, out := runInProcess(t, nil, "--store", filepath.Join(work, "store"), "--run", "r", "--outputs-path", filepath.Join(work, "o"),
			"--state-dir", filepath.Join(work, "s"), "--api-url", srv.URL, "--", "true")
		if code != 0 || !strings.Contains(out, "cannot report the run's status") {
			t.Errorf("exit %d, want 0 with a warning:\n%s", code, out)
		}
	})
	t.Run("shm", func(t *testing.T) {
		on := runWithPlugins(t, "plugins: {shm: true}\n")
		off := runWithPlugins(t, "plugins: {shm: false}\n")
		if !strings.Contains(resourceRecords(t, on), `"shm_size_bytes"`) {
			t.Errorf("shm on: no shm_size_bytes in the samples")
		}
		if recs := resourceRecords(t, off); recs == "" || strings.Contains(recs, `"shm_size_bytes"`) {
			t.Errorf("shm off: samples %q, want samples without shm fields", recs)
		}
	})
	t.Run("docker", func(t *testing.T) {
		engine := dockertest.New(t)
		t.Setenv("DOCKER_HOST", "unix://"+engine.Socket)
		engine.Add("job", false)
		engine.Write("job", "stdout", time.Now(), "hello from the job")
		engine.SetStatus("job", "exited", 0)
		off := runWithPlugins(t, "plugins: {docker: false}\n")
		if off.code != 0 || len(engine.Requests()) != 0 {
			t.Errorf("docker off: exit %d, %d requests to the mounted socket, want none", off.code, len(engine.Requests()))
		}
		refused := runWithPlugins(t, "plugins: {docker: false}\n", "--logs", "docker:job")
		if refused.code != exitUsage || !strings.Contains(refused.out, "docker") {
			t.Errorf("docker off with --logs docker:job: exit %d, want 2 naming the docker plugin:\n%s", refused.code, refused.out)
		}
		on := runWithPlugins(t, "plugins: {docker: true}\n", "--logs", "docker:job", "--resources-container", "job")
		if on.code != 0 || len(engine.Requests()) == 0 || !on.has("logs/") {
			t.Errorf("docker on: exit %d, %d requests to the engine, logs in the store: %v\n%s", on.code, len(engine.Requests()), on.has("logs/"), on.out)
		}
	})
	t.Run("misspelt key", func(t *testing.T) {
		// The line is the file's, under a plugins: section too.
		p := runWithPlugins(t, "# a Polyaxon spec fragment\nplugins:\n  collectLogs: false\n  colectArtifacts: true\n")
		if p.code != exitUsage || !strings.Contains(p.out, "line 4: plugins.colectArtifacts") || !strings.Contains(p.out, "did you mean collectArtifacts?") {
			t.Errorf("exit %d, want 2 naming line 4, the key and the one it is close to:\n%s", p.code, p.out)
		}
		if p.has("") {
			t.Errorf("refused, yet the store holds %v", p.objects)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		// Neither known nor close to a known key: a newer Polyaxon's.
		p := runWithPlugins(t, "plugins: {collectEverything: true, collectLogs: false}\n")
		if p.code != 0 || !strings.Contains(p.out, `level=WARN msg="plugins: unknown key, ignored" key=plugins.collectEverything line=1`) {
			t.Errorf("exit %d, want 0 with a warning naming the key:\n%s", p.code, p.out)
		}
		if p.has("logs/") {
			t.Error("collectLogs: false beside the unknown key was not in effect")
		}
	})
	t.Run("keys without effect", func(t *testing.T) {
		p := runWithPlugins(t, "plugins: {syncStatuses: true, notifications: [{connections: [slack], trigger: failed}], sidecar: {image: x, syncInterval: 4}}\n")
		if p.code != 0 || strings.Count(p.out, `msg="plugins accepted, no effect in the collector" keys="syncStatuses, notifications, sidecar.image"`) != 1 {
			t.Errorf("exit %d, want 0 and one line naming the keys without effect:\n%s", p.code, p.out)
		}
	})
}
