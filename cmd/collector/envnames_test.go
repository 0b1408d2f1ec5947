package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvNames: a COLLECTOR_ variable that names no setting is refused,
// with the setting it was probably meant to be; the variables Kubernetes
// gives a pod for a Service named collector, and those the collector gives
// a wrapped command, are not settings and pass.
func TestEnvNames(t *testing.T) {
	fs := defaultSettings().flagSet()
	for _, tt := range []struct {
		env  string
		want string // "" for accepted
	}{
		{"COLLECTOR_OUTPUTS_PATH=/o", ""},
		{"COLLECTOR_OUTPUT_PATH=/o", "COLLECTOR_OUTPUT_PATH: not a setting; did you mean COLLECTOR_OUTPUTS_PATH?"},
		{"COLLECTOR_SYNC_INTERVALL=5", "did you mean COLLECTOR_SYNC_INTERVAL?"},
		{"COLLECTOR_COLOUR=red", "COLLECTOR_COLOUR: not a setting (each flag --NAME is the environment variable COLLECTOR_NAME"},
		{"COLLECTOR_SERVICE_HOST=10.0.0.1", ""},
		{"COLLECTOR_SERVICE_PORT_METRICS=9090", ""},
		{"COLLECTOR_PORT=tcp://10.0.0.1:9090", ""},
		{"COLLECTOR_PORT_9090_TCP_ADDR=10.0.0.1", ""},
		{"COLLECTOR_METRICS_SERVICE_HOST=10.0.0.2", ""},
		{"COLLECTOR_ATTEMPT=2", ""},
		{"COLLECTOR_POD_NAME=p", ""},
		{"COLLECTOR_TEST_SERVERS=1", ""},
		{"NOT_COLLECTOR_X=1", ""},
	} {
		err := checkEnvNames([]string{"PATH=/bin", tt.env}, fs)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.env, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.env, err, tt.want)
		}
	}
}

// TestMisspeltEnvironmentVariable: the binary exits 2 on a misspelt
// variable, before it writes anything.
func TestMisspeltEnvironmentVariable(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, []string{"COLLECTOR_OUTPUT_PATH=" + filepath.Join(dir, "out")}, "--store", filepath.Join(dir, "store"), "--", "true")
	if code := p.wait(t, time.Minute); code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "did you mean COLLECTOR_OUTPUTS_PATH?") {
		t.Errorf("output:\n%s", p.stderr.String())
	}
	assertEmpty(t, filepath.Join(dir, "store"))
}
