package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolyaxonfileEndToEnd runs the built collector as a platform would:
// --plugins a whole polyaxonfile (an operation with its component inline,
// syncStatuses, notifications, every sidecar field, a key of a newer
// Polyaxon) and --connections the agent's catalog, with its JSON form in
// POLYAXON_CONNECTIONS_CATALOG too, both listing connections of kinds the
// collector has no use for (git, registry, slack, custom with a configMap).
// It must run: exit 0, the outputs in the store, the plugins in effect, the
// keys without effect named once (and on /metrics), the unknown key warned
// of.
func TestPolyaxonfileEndToEnd(t *testing.T) {
	work := t.TempDir()
	store, outputs := filepath.Join(work, "store"), filepath.Join(work, "outputs")
	spec, err := os.ReadFile(filepath.Join("testdata", "polyaxon", "operation.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := os.ReadFile(filepath.Join("testdata", "polyaxon", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	catalog = bytes.ReplaceAll(catalog, []byte("{store}"), []byte(store))
	writeFile(t, filepath.Join(work, "polyaxonfile.yaml"), spec)
	writeFile(t, filepath.Join(work, "connections.yaml"), catalog)
	envCatalog := `{"connections": [{"name": "repo-ml", "kind": "git", "schema": {"url": "https://github.com/acme/ml"}},` +
		` {"name": "pagerduty", "kind": "pagerduty", "secret": {"name": "pd"}}, {"name": "newer", "kind": "vector_db", "rateLimit": 10}]}`

	// The job waits on a FIFO until /metrics has been read.
	fifo := filepath.Join(work, "go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	release := func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Write([]byte("\n"))
			f.Close()
		}
	}
	t.Cleanup(release)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	p := start(t, work, []string{"POLYAXON_CONNECTIONS_CATALOG=" + envCatalog},
		"--plugins", filepath.Join(work, "polyaxonfile.yaml"), "--connections", filepath.Join(work, "connections.yaml"),
		"--run", "train-resnet-1", "--outputs-path", outputs, "--state-dir", filepath.Join(work, "state"), "--resources-interval", "0.2",
		"--probe-addr", addr,
		"--", "sh", "-c", `echo "epoch 1 done"; printf 'weights' > "$COLLECTOR_OUTPUTS_PATH/model.bin"; read line < "$1"`, "sh", fifo)
	var metrics string
	waitFor(t, 30*time.Second, "/metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		metrics = string(body)
		return resp.StatusCode == http.StatusOK
	})
	release()
	for _, key := range []string{"syncStatuses", "notifications", "sidecar.image", "sidecar.resources"} {
		if want := `collector_plugins_no_effect_info{key="` + key + `"} 1`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s:\n%s", want, metrics)
		}
	}
	code := p.wait(t, 60*time.Second)
	out := p.stderr.String()
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}

	run := filepath.Join(store, "train-resnet-1")
	if got, err := os.ReadFile(filepath.Join(run, "outputs", "model.bin")); err != nil || string(got) != "weights" {
		t.Errorf("outputs/model.bin in the store: %q, %v; want the file's bytes", got, err)
	}
	// The operation's collectResources: false wins over the component's
	// true; the component's collectLogs: true stays.
	if _, err := os.Stat(filepath.Join(run, "resources")); err == nil {
		t.Error("collectResources: false, yet resources/ is in the store")
	}
	if _, err := os.Stat(filepath.Join(run, "logs")); err != nil {
		t.Errorf("collectLogs: true, yet no logs/ in the store: %v", err)
	}
	if !strings.Contains(out, "sync_interval=2") {
		t.Errorf("sidecar.syncInterval 2 not in effect:\n%s", out)
	}
	for _, want := range []string{
		`level=INFO msg="plugins accepted, no effect in the collector" keys="syncStatuses, notifications, sidecar.image, sidecar.imageTag, sidecar.imagePullPolicy, sidecar.sleepInterval, sidecar.monitorLogs, sidecar.resources"`,
		`level=WARN msg="plugins: unknown key, ignored" key=plugins.gpuTelemetry line=17`,
		// logLevel: debug lists the connections left alone, once.
		`level=DEBUG msg="connections not used by the collector, not checked" connections="repo-ml (git), docker-registry (registry), slack-ml (slack), feature-store (custom), datasets (volume_claim), repo-ml (git), pagerduty (pagerduty), newer (vector_db)"`,
	} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%d lines %s, want 1:\n%s", n, want, out)
		}
	}
}
