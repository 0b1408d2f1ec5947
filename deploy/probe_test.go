package deploy

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestProbePathsServed runs the built collector in sidecar mode with a probe
// address and asks it for the paths the sidecar manifest's startup and
// liveness probes ask for: each must answer 200 once the collector is ready.
// Then SIGTERM, as Kubernetes sends a native sidecar once the job's
// container has exited, must end it with exit code 0.
func TestProbePathsServed(t *testing.T) {
	m := loadManifests(t)
	j, ok := m.jobs["train-sidecar"]
	if !ok {
		t.Fatal("no Job train-sidecar")
	}
	var paths []string
	for _, c := range j.Spec.Template.Spec.InitContainers {
		if c.StartupProbe != nil && c.StartupProbe.HTTPGet != nil {
			paths = append(paths, c.StartupProbe.HTTPGet.Path)
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil {
			paths = append(paths, c.LivenessProbe.HTTPGet.Path)
		}
	}
	if len(paths) == 0 {
		t.Fatal("the sidecar has no HTTP probes")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(collectorBinary(t),
		"--outputs-path="+filepath.Join(dir, "outputs"),
		"--store="+filepath.Join(dir, "store"),
		"--state-dir="+filepath.Join(dir, "state"),
		"--run=probe-test",
		"--probe-addr="+addr,
	)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			<-exited
		}
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, path := range paths {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, err := get(path)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d, %v after 30 s; the collector said:\n%s", path, code, err, stderr.String())
			}
			select {
			case err := <-exited:
				waited = true
				t.Fatalf("the collector exited (%v) before GET %s answered 200:\n%s", err, path, stderr.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if code, _ := get("/no-such-path"); code == http.StatusOK {
		t.Error("GET /no-such-path answered 200; the probe check above would prove nothing")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Errorf("after SIGTERM: %v; want exit 0:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the collector did not exit 30 s after SIGTERM:\n%s", stderr.String())
	}
}
