package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// TestCommitMarkerKilledMidFolder: a job writes 200 shards and their
// commit_success.txt at once; its collector, on a slow link to the S3
// server, is killed (SIGKILL) with part of the folder stored. The marker is
// not in the store; a restore on a fresh disk leaves the folder out and says
// so; the collector started again on its disk stores the folder whole,
// marker included.
func TestCommitMarkerKilledMidFolder(t *testing.T) {
	const run, shards = "markerkill", 200
	store, env, traffic, f := s3Store(t)
	work := t.TempDir()
	out, state := filepath.Join(work, "out"), filepath.Join(work, "state")
	args := func(extra ...string) []string {
		return append([]string{"--store", store, "--run", run, "--outputs-path", out, "--state-dir", state,
			"--sync-interval", "1", "--settle", "0.05", "--resources-interval", "0", "--report=false",
			"--commit-marker", "commit_success.txt"}, extra...)
	}
	write := fmt.Sprintf(`mkdir -p %[1]s/ckpt-1 && for i in $(seq 1 %[2]d); do head -c 4096 /dev/urandom > %[1]s/ckpt-1/shard-$i; done && echo ok > %[1]s/ckpt-1/commit_success.txt; sleep 60`, out, shards)
	traffic.BytesPerSecond.Store(4 << 10)
	first := start(t, t.TempDir(), env, args("--", "sh", "-c", write)...)
	root := f.Open(t)
	prefix := run + "/outputs/ckpt-1/"
	count := func() (n int, marker bool) {
		it := root.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(context.Background())
			if err != nil {
				return n, marker
			}
			if strings.HasSuffix(obj.Key, "/commit_success.txt") {
				marker = true
			} else {
				n++
			}
		}
	}
	waitFor(t, 60*time.Second, "some shards in the store and the state checkpointed", func() bool {
		n, _ := count()
		return n >= 20
	})
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)
	traffic.BytesPerSecond.Store(0)
	n, marker := count()
	if marker {
		t.Fatalf("the marker is in the store with %d shards of %d", n, shards)
	}
	if n >= shards {
		t.Fatalf("all %d shards stored before the kill: not killed mid-folder", n)
	}

	fresh := t.TempDir()
	restore := start(t, t.TempDir(), env, "restore", "--store", store, "--run", run,
		"--outputs-path", filepath.Join(fresh, "out"), "--state-dir", filepath.Join(fresh, "state"))
	if code := restore.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("restore exited %d:\n%s", code, restore.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(fresh, "out", "ckpt-1")); !os.IsNotExist(err) {
		t.Errorf("the restore brought ckpt-1 back (%v); want it left out", err)
	}
	if got := strings.Count(restore.stderr.String(), "commit marker"); got != 1 || !strings.Contains(restore.stderr.String(), "ckpt-1") {
		t.Errorf("the restore's log names the folder %d times; want one line naming ckpt-1:\n%s", got, restore.stderr.String())
	}

	again := start(t, t.TempDir(), env, args("--", "true")...)
	if code := again.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("the collector started again exited %d:\n%s", code, again.stderr.String())
	}
	if n, marker := count(); !marker || n != shards {
		t.Fatalf("after the restart the store holds %d shards of %d, marker %v", n, shards, marker)
	}
}
