package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// s3Store returns a --store URL for a fresh S3 bucket reached through a
// counting proxy, and the environment with its credentials.
func s3Store(t *testing.T) (store string, env []string, traffic *storetest.Traffic, f storetest.Fixture) {
	t.Helper()
	f = storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, os.Getenv("COLLECTOR_TEST_S3_ENDPOINT"))
	bucket := strings.SplitN(f.Conn.Schema.Bucket, "/", 4)[2] // s3://BUCKET/team/artifacts
	store = "s3://" + bucket + "/team/artifacts?endpoint=" + proxy
	env = []string{
		"AWS_ACCESS_KEY_ID=" + os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY"),
	}
	return store, env, traffic, f
}

// TestRetryOnANewPod: a run is killed, its pod is replaced (empty outputs
// folder, no local state), and the collector starts again: the outputs come
// back verified, nothing is uploaded again, and the job sees attempt 2.
func TestRetryOnANewPod(t *testing.T) {
	store, env, traffic, f := s3Store(t)
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	files := map[string][]byte{
		"ckpt/epoch-1.pt": make([]byte, 3<<20),
		"ckpt/epoch-2.pt": make([]byte, 12<<20), // a multipart upload
		"metrics.csv":     []byte("step,loss\n1,0.5\n"),
		"logs/näme.txt":   []byte("x"),
	}
	for name, data := range files {
		_, _ = rand.Read(data)
		writeFile(t, filepath.Join(out, name), data)
	}
	args := []string{"--store", store, "--run", "retry-run", "--outputs-path", out, "--state-dir", state,
		"--sync-interval", "0.3", "--settle", "0.1"}

	first := start(t, work, env, args...)
	root := f.Open(t)
	waitFor(t, 60*time.Second, "the first attempt's uploads", func() bool {
		return storetest.Diff(files, storetest.Objects(t, root, "retry-run/outputs/")) == "" &&
			func() bool { ok, _ := root.Exists(t.Context(), "retry-run/.collector/state.json"); return ok }()
	})
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)

	// A new pod: nothing local survives.
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	traffic.Reset()
	envFile := filepath.Join(work, "job-env.txt")
	second := start(t, work, env, append(args, "--", "sh", "-c",
		`echo "$COLLECTOR_ATTEMPT $COLLECTOR_RESUMED $COLLECTOR_RUN" > `+envFile+`; ls "$COLLECTOR_OUTPUTS_PATH/ckpt/epoch-2.pt"`)...)
	if code := second.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("second attempt exited %d:\n%s", code, second.stderr.String())
	}
	if diff := storetest.Diff(files, storetest.Folder(t, out)); diff != "" {
		t.Fatalf("outputs not restored:\n%s", diff)
	}
	got, _ := os.ReadFile(envFile)
	if strings.TrimSpace(string(got)) != "2 1 retry-run" {
		t.Errorf("the command saw COLLECTOR_ATTEMPT, COLLECTOR_RESUMED, COLLECTOR_RUN = %q, want \"2 1 retry-run\"", got)
	}
	if n := traffic.Puts("/retry-run/outputs/"); n != 0 {
		t.Errorf("the second attempt uploaded %d requests of outputs again, want 0:\n%s", n, second.stderr.String())
	}
	if !strings.Contains(second.stderr.String(), "restored the run's outputs") {
		t.Errorf("no restore logged:\n%s", second.stderr.String())
	}
}

// TestRestoreCommand: `collector restore` brings the outputs back (here only
// what --include selects) and the collector that starts next takes over its
// attempt and uploads nothing again.
func TestRestoreCommand(t *testing.T) {
	f := storetest.HostPath(t)
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	writeFile(t, filepath.Join(out, "ckpt/old.pt"), []byte("old"))
	writeFile(t, filepath.Join(out, "ckpt/latest.pt"), []byte("latest"))
	common := []string{"--connections", f.Connections, "--run", "r", "--outputs-path", out, "--state-dir", state}
	if code, msg := runInProcess(t, nil, append(common, "--sync-interval", "0", "--", "true")...); code != 0 {
		t.Fatalf("first attempt: %d %s", code, msg)
	}
	os.RemoveAll(out)
	os.RemoveAll(state)

	code, msg := runInProcess(t, nil, append([]string{"restore"}, append(common, "--include", "latest.*")...)...)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, msg)
	}
	if diff := storetest.Diff(map[string][]byte{"ckpt/latest.pt": []byte("latest")}, storetest.Folder(t, out)); diff != "" {
		t.Fatalf("restore --include: %s", diff)
	}
	envFile := filepath.Join(work, "env")
	code, msg = runInProcess(t, nil, append(common, "--sync-interval", "0", "--", "sh", "-c", `echo $COLLECTOR_ATTEMPT > `+envFile)...)
	if code != 0 {
		t.Fatalf("second attempt: %d %s", code, msg)
	}
	if got, _ := os.ReadFile(envFile); strings.TrimSpace(string(got)) != "2" {
		t.Errorf("attempt after restore = %q, want 2", got)
	}
	if !strings.Contains(msg, "uploaded=0") || strings.Contains(msg, "deleted=1") {
		t.Errorf("the attempt after restore uploaded or deleted something:\n%s", msg)
	}
	// The old checkpoint, left out of the restore, is still in the store.
	if _, err := os.Stat(filepath.Join(f.Conn.Schema.MountPath, "r/outputs/ckpt/old.pt")); err != nil {
		t.Errorf("the checkpoint left out of the restore is gone from the store: %v", err)
	}
}

// TestRestoreRefusesTraversalKeys: a store holding a key that would land
// outside the outputs folder fails the restore with the key named, and
// nothing is written outside.
func TestRestoreRefusesTraversalKeys(t *testing.T) {
	f := storetest.HostPath(t)
	storeDir := f.Conn.Schema.MountPath
	writeFile(t, filepath.Join(storeDir, "r/outputs/fine.txt"), []byte("fine"))
	// A host path cannot hold "..", so the outputs folder holds a link that
	// escapes: the key outputs/escape/x would pass through it.
	outside := t.TempDir()
	work := t.TempDir()
	out := filepath.Join(work, "outputs")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(out, "escape")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(storeDir, "r/outputs/escape/x"), []byte("must not land outside"))
	code, msg := runInProcess(t, nil, "restore", "--connections", f.Connections, "--run", "r",
		"--outputs-path", out, "--state-dir", filepath.Join(work, "state"))
	if code != 1 || !strings.Contains(msg, `outputs/escape/x`) {
		t.Fatalf("exit %d, want 1 naming the key:\n%s", code, msg)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the restore wrote outside the outputs folder: %v", entries)
	}
}

// TestStateOfAnotherStore: the same state folder used with another store
// (the run moved to a new bucket) must not make the collector believe the new
// store already holds the outputs.
func TestStateOfAnotherStore(t *testing.T) {
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	writeFile(t, filepath.Join(out, "model.pt"), []byte("weights"))
	first, second := filepath.Join(work, "store-a"), filepath.Join(work, "store-b")
	for _, store := range []string{first, second} {
		code, msg := runInProcess(t, nil, "--store", store, "--run", "r", "--outputs-path", out, "--state-dir", state,
			"--sync-interval", "0", "--", "true")
		if code != 0 {
			t.Fatalf("run with --store %s: exit %d: %s", store, code, msg)
		}
		got, err := os.ReadFile(filepath.Join(store, "r/outputs/model.pt"))
		if err != nil || string(got) != "weights" {
			t.Fatalf("store %s holds %q (%v), want the file", store, got, err)
		}
	}
	aside, _ := filepath.Glob(filepath.Join(state, "r", "state.json.other-store-*"))
	if len(aside) != 1 {
		t.Errorf("the first store's state was not moved aside: %v", aside)
	}
}

// TestWrapperFinalSyncOutlastsShutdownTimeout: a job that ended by itself is
// not under a grace period; its final sync takes as long as the uploads need,
// even well past --shutdown-timeout.
func TestWrapperFinalSyncOutlastsShutdownTimeout(t *testing.T) {
	store, env, traffic, f := s3Store(t)
	traffic.BytesPerSecond.Store(1 << 20) // 3 MiB take about 3 s
	work := t.TempDir()
	out := filepath.Join(work, "outputs")
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	writeFile(t, filepath.Join(out, "model.pt"), data)
	p := start(t, work, env, "--store", store, "--run", "slow", "--outputs-path", out, "--state-dir", filepath.Join(work, "state"),
		"--sync-interval", "0", "--shutdown-timeout", "1", "--", "true")
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, p.stderr.String())
	}
	if diff := storetest.Diff(map[string][]byte{"model.pt": data}, storetest.Objects(t, f.Open(t), "slow/outputs/")); diff != "" {
		t.Fatalf("store after the final sync: %s", diff)
	}
}
