package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
