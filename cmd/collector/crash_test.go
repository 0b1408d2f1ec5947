package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestCrashAndRestart kills the collector with SIGKILL at 20 random moments
// while it syncs 1,000 files and a 256 MiB file to S3, restarting it each
// time on the same state. At the end the store must mirror the folder byte
// for byte, and each restart must have resumed: no part of the big file
// that the server had completed (answered 200) before a kill is sent again
// after it, and each small file is uploaded once: one that the server held
// before a kill, whether the state left by the kill records it or not, is
// not uploaded again after it.
func TestCrashAndRestart(t *testing.T) {
	const (
		kills       = 20
		smallFiles  = 1000
		bigSize     = 256 << 20
		partSize    = 5 << 20
		concurrency = 4
	)
	store, env, traffic, f := s3Store(t)
	// A slow link (8 MiB/s a request, 32 MiB/s with 4 parts in flight), so
	// that the kills land while the big file is on its way.
	traffic.BytesPerSecond.Store(8 << 20)
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	big := make([]byte, bigSize)
	_, _ = rand.Read(big)
	writeFile(t, filepath.Join(out, "model/big.bin"), big)
	for i := range smallFiles {
		data := make([]byte, 1024+i%7*1024)
		_, _ = rand.Read(data)
		writeFile(t, filepath.Join(out, fmt.Sprintf("shard-%02d/file-%04d.bin", i%20, i)), data)
	}
	args := []string{"--store", store, "--run", "crash", "--outputs-path", out, "--state-dir", state,
		"--sync-interval", "0.2", "--settle", "0", "--part-size", "5MiB", "--part-concurrency", fmt.Sprint(concurrency)}

	seed := uint64(time.Now().UnixNano())
	rng := mathrand.New(mathrand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	root := f.Open(t)
	var killed []time.Time         // when each kill was sent
	var recorded []map[string]bool // the outputs the state left by each kill records
	var whole []bool               // whether the store held the whole big file at each kill
	for i := range kills {
		// The job goes on writing: each attempt has new files to sync.
		for j := range 20 {
			data := make([]byte, 512+rng.IntN(4096))
			_, _ = rand.Read(data)
			writeFile(t, filepath.Join(out, fmt.Sprintf("epoch-%02d/sample-%02d.bin", i, j)), data)
		}
		p := startBinary(t, fastBinary, work, env, args...)
		// The kill lands while the big file is on its way, whatever the
		// collector's start costs on a busy machine: at a random moment
		// after this attempt completed a part of it.
		started := time.Now()
		waitFor(t, 60*time.Second, "a part of the big file completed, or the whole file", func() bool {
			there, _ := root.Exists(t.Context(), "crash/outputs/model/big.bin")
			return there || partCompleted(traffic.Log(), started)
		})
		time.Sleep(time.Duration(rng.IntN(600)) * time.Millisecond)
		killed = append(killed, time.Now())
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t, 10*time.Second)
		recorded = append(recorded, recordedOutputs(t, filepath.Join(state, "crash", "state.json")))
		there, _ := root.Exists(t.Context(), "crash/outputs/model/big.bin")
		whole = append(whole, there)
		t.Logf("kill %d after %v: big file bytes sent so far %d MiB", i+1, killed[i].Sub(started).Round(time.Millisecond), traffic.PutBytes("model/big.bin")>>20)
	}

	traffic.BytesPerSecond.Store(0)
	last := startBinary(t, fastBinary, work, env, args...)
	want := storetest.Folder(t, out)
	// Listed at their sizes first (cheap to poll), then compared byte for byte.
	waitFor(t, 120*time.Second, "everything in the store", func() bool {
		return sameSizes(t, want, root, "crash/outputs/")
	})
	if code := last.stop(t, 60*time.Second); code != 0 {
		t.Fatalf("last run exited %d:\n%s", code, last.stderr.String())
	}
	if diff := storetest.Diff(want, storetest.Objects(t, root, "crash/outputs/")); diff != "" {
		t.Fatalf("store does not mirror the folder after %d kills:\n%s", kills, diff)
	}

	// What resuming means, as the server saw it: what the store held before
	// a kill, and the collector could know of, is not sent again after it.
	log := traffic.Log()
	name := func(r storetest.Request) string { return r.Path + "?partNumber=" + r.Query.Get("partNumber") }
	stored := map[string]time.Time{} // when the server first answered 200 to a PUT of each object or part
	for _, r := range log {
		if at, ok := stored[name(r)]; r.Method == http.MethodPut && r.Status == http.StatusOK && (!ok || r.Answered.Before(at)) {
			stored[name(r)] = r.Answered
		}
	}
	completed := map[string]bool{} // the parts of the big file completed before the last kill
	redone := map[string]int{}     // requests that sent again what the collector could know was there
	var smallPuts, smallAgain int
	again := map[string]bool{}
	for _, r := range log {
		_, rel, ok := strings.Cut(r.Path, "/crash/outputs/")
		if !ok || r.Method != http.MethodPut {
			continue
		}
		part := r.Query.Get("partNumber")
		at, wasStored := stored[name(r)]
		if part != "" && wasStored && at.Before(killed[len(killed)-1]) {
			completed[part] = true
		}
		if part == "" {
			smallPuts++
			if wasStored && at.Before(r.Start) {
				smallAgain++
				again[rel] = true
			}
		}
		for i, k := range killed {
			if !r.Start.After(k) {
				break
			}
			if part != "" && whole[i] {
				redone[fmt.Sprintf("the big file, whole in the store at kill %d, was uploaded again after it", i+1)]++
				break
			}
			if part != "" && wasStored && at.Before(k) {
				redone[fmt.Sprintf("part %s of the big file, completed before kill %d (uploads %s), was sent again after it (upload %s)",
					part, i+1, strings.Join(uploadsOf(log, name(r), k), ","), short(r.Query.Get("uploadId")))]++
				break
			}
			if part == "" && recorded[i][rel] {
				redone[fmt.Sprintf("%s, recorded as uploaded in the state left by kill %d, was uploaded again after it", rel, i+1)]++
				break
			}
		}
	}
	for _, what := range slices.Sorted(maps.Keys(redone)) {
		t.Errorf("%s (%d requests)", what, redone[what])
	}
	if len(again) > 0 {
		t.Errorf("%d small files the server held already were uploaded again (%d requests), e.g. %s",
			len(again), smallAgain, slices.Sorted(maps.Keys(again))[0])
	}
	if len(completed) == 0 {
		t.Errorf("no part of the big file was completed before a kill: the test checked nothing")
	}
	sent := traffic.PutBytes("model/big.bin")
	t.Logf("big file: %d MiB sent for %d MiB, %d MiB re-sent over %d kills; %d parts completed before a kill",
		sent>>20, bigSize>>20, (sent-bigSize)>>20, kills, len(completed))
	t.Logf("small files: %d uploads for %d files", smallPuts, smallFiles+kills*20)
	if _, err := os.Stat(filepath.Join(state, "crash", "state.json")); err != nil {
		t.Errorf("no local state: %v", err)
	}
}

// uploadsOf names the uploads in which the server completed the part (path
// and number) before the time given.
func uploadsOf(log []storetest.Request, part string, before time.Time) []string {
	var ids []string
	for _, r := range log {
		if r.Path+"?partNumber="+r.Query.Get("partNumber") == part && r.Method == http.MethodPut &&
			r.Status == http.StatusOK && r.Answered.Before(before) && !slices.Contains(ids, short(r.Query.Get("uploadId"))) {
			ids = append(ids, short(r.Query.Get("uploadId")))
		}
	}
	return ids
}

func short(id string) string { return id[:min(8, len(id))] }

// partCompleted tells whether the server completed a part of the big file
// since the given time.
func partCompleted(log []storetest.Request, since time.Time) bool {
	for _, r := range log {
		if strings.HasSuffix(r.Path, "/crash/outputs/model/big.bin") && r.Method == http.MethodPut &&
			r.Query.Has("partNumber") && r.Status == http.StatusOK && r.Answered.After(since) {
			return true
		}
	}
	return false
}

// sameSizes tells whether the objects under prefix are the files of want, at
// their sizes.
func sameSizes(t *testing.T, want map[string][]byte, b *blob.Bucket, prefix string) bool {
	t.Helper()
	n := 0
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(t.Context())
		if err == io.EOF {
			return n == len(want)
		}
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		data, ok := want[strings.TrimPrefix(obj.Key, prefix)]
		if !ok || int64(len(data)) != obj.Size {
			return false
		}
		n++
	}
}

// recordedOutputs returns the outputs that the collector's state at path
// records as being in the store.
func recordedOutputs(t *testing.T, path string) map[string]bool {
	t.Helper()
	st, err := resume.Load(path)
	if errors.Is(err, resume.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		t.Fatalf("the state a killed collector left: %v", err)
	}
	out := make(map[string]bool, len(st.Outputs))
	for rel := range st.Outputs {
		out[rel] = true
	}
	return out
}
