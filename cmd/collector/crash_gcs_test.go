package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestGCSKillMidUpload kills the collector with SIGKILL half-way through the
// third part of a 40 MiB file's GCS upload, and starts it again on the same
// state: it continues the upload session its journal kept, and sends only the
// bytes the session did not hold. At the end the store mirrors the folder.
func TestGCSKillMidUpload(t *testing.T) {
	const (
		bigSize  = 40 << 20
		partSize = 5 << 20
	)
	f := storetest.GCS(t)
	object := "prefix/crash/outputs/model/big.bin" // in the bucket: the connection's prefix, the run's outputs
	proxy := storetest.NewCutProxy(t, f.Getenv("STORAGE_EMULATOR_HOST"), func(r *http.Request) bool {
		q := r.URL.Query()
		return r.Method == http.MethodPut && q.Get("upload_id") != "" && q.Get("name") == object
	})
	env := []string{"STORAGE_EMULATOR_HOST=" + proxy.Host}
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	big := make([]byte, bigSize)
	_, _ = rand.Read(big)
	writeFile(t, filepath.Join(out, "model/big.bin"), big)
	for i := range 10 {
		writeFile(t, filepath.Join(out, fmt.Sprintf("metrics/step-%02d.json", i)), fmt.Appendf(nil, `{"step": %d}`, i))
	}
	args := []string{"--connections", f.Connections, "--run", "crash", "--outputs-path", out, "--state-dir", state,
		"--sync-interval", "0.2", "--settle", "0", "--part-size", "5MiB"}

	started := make(chan *process, 1)
	proxy.Arm(2*partSize+partSize/2, func() { _ = (<-started).cmd.Process.Signal(syscall.SIGKILL) })
	first := startBinary(t, fastBinary, work, env, args...)
	started <- first
	select {
	case <-first.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the collector was not killed within 3 minutes")
	}
	if !proxy.Cut() {
		t.Fatalf("the collector exited %d before the kill:\n%s", first.code, first.stderr.String())
	}
	sentBefore := proxy.Sent()

	proxy.Arm(0, nil)
	second := startBinary(t, fastBinary, work, env, args...)
	root := f.Open(t)
	want := storetest.Folder(t, out)
	waitFor(t, 3*time.Minute, "everything in the store", func() bool {
		return storetest.Diff(want, storetest.Objects(t, root, "crash/outputs/")) == ""
	})
	if code := second.stop(t, 60*time.Second); code != 0 {
		t.Fatalf("the restarted collector exited %d:\n%s", code, second.stderr.String())
	}
	if diff := storetest.Diff(want, storetest.Objects(t, root, "crash/outputs/")); diff != "" {
		t.Fatalf("store does not mirror the folder:\n%s", diff)
	}

	// The kill cut the third part: the session held the first two.
	left := int64(bigSize - 2*partSize)
	sentAfter := proxy.Sent()
	t.Logf("killed after %d bytes of the big file sent; after the restart %d bytes sent for the %d the session did not hold: %d committed bytes sent again",
		sentBefore, sentAfter, left, sentAfter-left)
	if sentAfter != left {
		t.Errorf("the restarted collector sent %d bytes of the big file, want %d: only what the session did not hold", sentAfter, left)
	}
}
