package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEC2 speaks IMDSv2: a token from PUT /latest/api/token, required by
// every GET; the Spot interruption notice once noticed is set.
type fakeEC2 struct {
	mu     stdsync.Mutex
	token  string
	notice atomic.Bool
	served atomic.Int64 // when the notice was first served (Unix ns)
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
		f.token = fmt.Sprintf("t%d", time.Now().UnixNano())
		fmt.Fprint(w, f.token)
	case r.Header.Get("X-aws-ec2-metadata-token") != f.token:
		http.Error(w, "", http.StatusUnauthorized)
	case r.URL.Path == "/latest/meta-data/spot/instance-action" && f.notice.Load():
		f.served.CompareAndSwap(0, time.Now().UnixNano())
		fmt.Fprintf(w, `{"action": "terminate", "time": "%s"}`, time.Now().Add(2*time.Minute).UTC().Format(time.RFC3339))
	default:
		http.NotFound(w, r)
	}
}

// TestPreemptionNotice runs the collector around a command with no sync
// interval, on a fake EC2: once the metadata service gives the Spot
// interruption notice, and before any SIGTERM, the outputs are in the store
// (and what the command writes on the signal, after it), the command got
// SIGUSR1, its logs are in the store, and /metrics says so. Then SIGTERM ends
// the run as before.
func TestPreemptionNotice(t *testing.T) {
	dir := t.TempDir()
	out, store := filepath.Join(dir, "outputs"), filepath.Join(dir, "store")
	ec2 := &fakeEC2{}
	imds := httptest.NewServer(ec2)
	defer imds.Close()
	ready := filepath.Join(dir, "ready")
	addr := freeAddr(t)
	p := start(t, dir, []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL},
		"--store", store, "--run", "spot", "--outputs-path", out, "--state-dir", filepath.Join(dir, "state"),
		"--sync-interval", "0", "--resources-interval", "0", "--probe-addr", addr, "--",
		"bash", "-c", `trap 'echo got USR1; echo saved on the signal > outputs/on-signal.txt' USR1
			trap 'exit 0' TERM
			mkdir -p outputs/ckpt-1 && head -c 1000000 /dev/urandom > outputs/ckpt-1/model.bin
			echo training; touch `+ready+`
			while :; do sleep 0.05; done`)
	waitFor(t, 30*time.Second, "the command's outputs", func() bool { _, err := os.Stat(ready); return err == nil })
	ec2.notice.Store(true)
	runDir := filepath.Join(store, "spot")
	waitFor(t, 30*time.Second, "the outputs in the store", func() bool {
		return sameFile(filepath.Join(out, "ckpt-1/model.bin"), filepath.Join(runDir, "outputs/ckpt-1/model.bin"))
	})
	took := time.Since(time.Unix(0, ec2.served.Load()))
	t.Logf("notice served to outputs in the store: under %v", took.Round(time.Millisecond))
	waitFor(t, 30*time.Second, "what the command wrote on SIGUSR1, in the store", func() bool {
		data, err := os.ReadFile(filepath.Join(runDir, "outputs/on-signal.txt"))
		return err == nil && string(data) == "saved on the signal\n"
	})
	waitFor(t, 30*time.Second, "the command's log in the store", func() bool {
		chunks, _ := filepath.Glob(filepath.Join(runDir, "logs", "*"))
		return len(chunks) > 0
	})
	var metrics string
	waitFor(t, 10*time.Second, "the notice on /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, `collector_preemption_notice{cloud="aws",kind="interruption"} 1`)
	})
	if !strings.Contains(metrics, `collector_preemption_deadline_timestamp_seconds{cloud="aws"}`) {
		t.Errorf("no deadline on /metrics:\n%s", metrics)
	}
	logs := p.stderr.String()
	for _, want := range []string{"got USR1", "the cloud takes this machine back", "deadline=", "signaled=\"user defined signal 1\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("the output lacks %q:\n%s", want, logs)
		}
	}
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want the command's 0:\n%s", code, p.stderr.String())
	}
}

// sameFile reports whether the file at b exists with a's bytes.
func sameFile(a, b string) bool {
	x, err := os.ReadFile(a)
	if err != nil {
		return false
	}
	y, err := os.ReadFile(b)
	return err == nil && string(x) == string(y)
}

// TestPreemptionSettings: a bad value exits 2 naming the setting and the
// valid values, with nothing written.
func TestPreemptionSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{name: "unknown cloud", args: []string{"--preemption-notice", "ec2"}, want: []string{"--preemption-notice", `"ec2"`, "auto, aws, gcp, azure, off"}},
		{name: "unknown cloud in env", env: map[string]string{"COLLECTOR_PREEMPTION_NOTICE": "GCE"}, want: []string{"--preemption-notice", `"GCE"`, "auto, aws, gcp, azure, off"}},
		{name: "signal it does not send", args: []string{"--preemption-signal", "SIGKILL"}, want: []string{"--preemption-signal", `"SIGKILL"`, "SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGHUP, none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			args := append([]string{"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"), "--store", store}, tc.args...)
			code, out := runInProcess(t, tc.env, args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("message lacks %q:\n%s", w, out)
				}
			}
			assertEmpty(t, store)
		})
	}
	for _, name := range []string{"SIGUSR1", "usr2", "none", "SIGTERM"} {
		if _, err := parseSignal(name); err != nil {
			t.Errorf("parseSignal(%q): %v", name, err)
		}
	}
}
