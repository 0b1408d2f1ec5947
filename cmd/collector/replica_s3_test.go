package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// replicaS3 is one replica of a distributed run on the test's S3 server,
// reached through a proxy of its own, so that its requests can be told
// from the others'.
type replicaS3 struct {
	name    string
	dir     string // its disk: outputs and state
	traffic *storetest.Traffic
	store   string
}

func replicasOnS3(t *testing.T, n int) (reps []*replicaS3, env []string, f storetest.Fixture) {
	t.Helper()
	store, env, _, f := s3Store(t)
	bucketPath, _, _ := strings.Cut(store, "?")
	work := t.TempDir()
	for i := range n {
		proxy, traffic := storetest.CountingProxy(t, os.Getenv("COLLECTOR_TEST_S3_ENDPOINT"))
		name := fmt.Sprintf("r%02d", i)
		reps = append(reps, &replicaS3{name: name, dir: filepath.Join(work, name), traffic: traffic,
			store: bucketPath + "?endpoint=" + proxy})
	}
	return reps, env, f
}

func (r *replicaS3) args(run string, extra ...string) []string {
	return append([]string{"--store", r.store, "--run", run, "--replica", r.name,
		"--outputs-path", filepath.Join(r.dir, "out"), "--state-dir", filepath.Join(r.dir, "state"),
		"--sync-interval", "1", "--settle", "0.05", "--resources-interval", "0.5", "--report=false"}, extra...)
}

// otherListings returns the listings r made inside another replica's
// folder of the run, and how many it made inside its own.
func (r *replicaS3) otherListings(run string) (bad []string, own int) {
	for _, req := range r.traffic.Log() {
		prefix := req.Query.Get("prefix")
		if req.Method != "GET" || req.Query.Get("list-type") == "" && !req.Query.Has("uploads") {
			continue
		}
		_, rest, ok := strings.Cut(prefix, "/"+run+"/replicas/")
		switch {
		case ok && strings.HasPrefix(rest, r.name+"/"):
			own++
		case ok && rest != "":
			bad = append(bad, prefix)
		}
	}
	return bad, own
}

// TestSixteenReplicasOnS3: 16 collectors on one run, each wrapping a
// command that writes 20 files of its own and one every replica writes, and
// prints 500 lines. Every file is in the store, the shared one at its path
// from the lowest replica and at shared.txt.replica-<name> from each other; collector logs prints every
// line once, labelled with its replica; each replica's state, logs and
// resources are its own, and no replica lists another's folder. Then one
// replica is retried on a fresh disk: it is attempt 2, gets its own 20 files
// back and no other's, and nothing else of the store changes.
func TestSixteenReplicasOnS3(t *testing.T) {
	const n, lines, run = 16, 500, "dist16"
	reps, env, f := replicasOnS3(t, n)
	start0 := time.Now()
	var procs []*process
	for _, r := range reps {
		procs = append(procs, start(t, t.TempDir(), env, r.args(run, "--", "sh", "-c", replicaCommand(r.name, lines))...))
	}
	for i, p := range procs {
		if code := p.wait(t, 120*time.Second); code != 0 {
			t.Fatalf("replica %s exited %d:\n%s", reps[i].name, code, p.stderr.String())
		}
	}
	t.Logf("16 replicas ran in %v", time.Since(start0).Round(time.Millisecond))
	root := f.Open(t)
	store := storetest.Objects(t, root, "")
	var names []string
	for _, r := range reps {
		names = append(names, r.name)
		for j := 1; j <= 20; j++ {
			key := fmt.Sprintf("%s/outputs/%s/f%d.txt", run, r.name, j)
			if got, want := string(store[key]), fmt.Sprintf("%s %d\n", r.name, j); got != want {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
		}
		for _, key := range []string{".collector/state.json", "resources/summary.json"} {
			if _, ok := store[run+"/replicas/"+r.name+"/"+key]; !ok {
				t.Errorf("%s/replicas/%s/%s is not in the store", run, r.name, key)
			}
		}
		if bad, own := r.otherListings(run); len(bad) > 0 || own == 0 {
			t.Errorf("replica %s listed other replicas' folders %v, and its own %d times (want none, and some)", r.name, bad, own)
		}
	}
	// The file every replica writes, at once: the lowest name keeps the
	// path, each other's copy is at shared.txt.replica-<name>.
	for _, r := range reps {
		key := run + "/outputs/shared.txt.replica-" + r.name
		if r == reps[0] {
			key = run + "/outputs/shared.txt"
		}
		if got, want := string(store[key]), "from "+r.name+"\n"; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, ok := store[run+"/outputs/shared.txt.replica-"+reps[0].name]; ok {
		t.Errorf("outputs/shared.txt.replica-%s is in the store: the lowest replica keeps the path", reps[0].name)
	}
	checkRunSummary(t, store, run, names)
	logEnv := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		logEnv[k] = v
	}
	checkReplicaLogs(t, []string{"--store", reps[0].store, "--run", run}, logEnv, names, lines)

	// r03 again, on a fresh disk.
	r := reps[3]
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	before := storetest.Objects(t, root, "")
	p := start(t, t.TempDir(), env, r.args(run, "--", "sh", "-c", replicaCommand(r.name, lines))...)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("r03's retry exited %d:\n%s", code, p.stderr.String())
	}
	out := storetest.Folder(t, filepath.Join(r.dir, "out"))
	if got := strings.TrimSpace(string(out["r03/restored-2"])); got != "20" {
		t.Errorf("r03's retry found %q of its 20 files restored before its command wrote them", got)
	}
	if _, ok := out["r03/attempt-2"]; !ok {
		t.Errorf("r03's retry did not see attempt 2; its outputs folder holds %v", keysOf(out))
	}
	for k := range out {
		if !strings.HasPrefix(k, "r03/") && k != "shared.txt" {
			t.Errorf("r03's retry restored %s, another replica's file", k)
		}
	}
	after := storetest.Objects(t, root, "")
	for k, v := range before {
		switch {
		case strings.HasPrefix(k, run+"/replicas/r03/"), k == run+"/outputs/shared.txt.replica-r03", k == run+"/resources/summary.json",
			k == run+"/resources/replicas/r03.json":
			continue // r03's own, its copy of the shared file, and the sum over replicas with r03's copy in it
		}
		if string(after[k]) != string(v) {
			t.Errorf("%s changed by r03's retry", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && !strings.HasPrefix(k, run+"/replicas/r03/") && !strings.HasPrefix(k, run+"/outputs/r03/") &&
			!strings.HasPrefix(k, run+"/.collector/attempts/r03.") {
			t.Errorf("%s added by r03's retry", k)
		}
	}
}

// TestReplicaKilledMidUpload: of four replicas on one run, one is killed
// (SIGKILL) in the middle of a large upload while the others run; started
// again on the same disk it continues (attempt 2) and stores its file, and
// the others end as if nothing happened: attempt 1, every file and line.
func TestReplicaKilledMidUpload(t *testing.T) {
	const run = "distkill"
	reps, env, f := replicasOnS3(t, 4)
	big := make([]byte, 24<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	victim := reps[0]
	writeFile(t, filepath.Join(victim.dir, "out", "model.bin"), big)
	victim.traffic.BytesPerSecond.Store(4 << 20)
	// The others run until the victim is back and done.
	release := filepath.Join(t.TempDir(), "release")
	var procs []*process
	for _, r := range reps[1:] {
		cmd := replicaCommand(r.name, 200) + fmt.Sprintf(`; while [ ! -e %q ]; do sleep 0.1; done`, release)
		procs = append(procs, start(t, t.TempDir(), env, r.args(run, "--part-size", "5MiB", "--", "sh", "-c", cmd)...))
	}
	vargs := victim.args(run, "--part-size", "5MiB", "--", "sh", "-c", replicaCommand(victim.name, 200)+"; sleep 30")
	first := start(t, t.TempDir(), env, vargs...)
	// Killed once a part is in the store and its progress in the local
	// journal: a restart has something to continue.
	journal := filepath.Join(victim.dir, "state", run, "replicas", victim.name, "state.journal")
	waitFor(t, 60*time.Second, "a part of model.bin in the store and recorded in the local journal", func() bool {
		data, _ := os.ReadFile(journal)
		return partOf(victim.traffic.Log(), "/"+run+"/outputs/model.bin") && strings.Contains(string(data), `"parts":[`)
	})
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)
	victim.traffic.BytesPerSecond.Store(0)
	victim.traffic.Reset()
	vargs = victim.args(run, "--part-size", "5MiB", "--", "sh", "-c", replicaCommand(victim.name, 200))
	second := start(t, t.TempDir(), env, vargs...)
	if code := second.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("the killed replica's restart exited %d:\n%s", code, second.stderr.String())
	}
	writeFile(t, release, nil)
	for i, p := range procs {
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("replica %s exited %d:\n%s", reps[i+1].name, code, p.stderr.String())
		}
	}
	root := f.Open(t)
	store := storetest.Objects(t, root, "")
	if string(store[run+"/outputs/model.bin"]) != string(big) {
		t.Errorf("outputs/model.bin is not the killed replica's file (%d bytes in the store)", len(store[run+"/outputs/model.bin"]))
	}
	// What the restart sent again of the file is logged, not asserted: the
	// resumption of a multipart upload is the sync engine's (crash_test.go).
	t.Logf("the restart sent %d MiB of model.bin's %d MiB", victim.traffic.PutBytes("/outputs/model.bin")>>20, len(big)>>20)
	if _, ok := store[run+"/outputs/r00/attempt-2"]; !ok {
		t.Error("the killed replica's restart did not see attempt 2")
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.name)
		for j := 1; j <= 20; j++ {
			if _, ok := store[fmt.Sprintf("%s/outputs/%s/f%d.txt", run, r.name, j)]; !ok {
				t.Errorf("%s's f%d.txt is not in the store", r.name, j)
			}
		}
		if r != victim {
			if _, ok := store[run+"/outputs/"+r.name+"/attempt-1"]; !ok {
				t.Errorf("replica %s did not see attempt 1", r.name)
			}
			if _, ok := store[run+"/outputs/"+r.name+"/attempt-2"]; ok {
				t.Errorf("replica %s saw an attempt 2", r.name)
			}
		}
	}
	logEnv := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		logEnv[k] = v
	}
	code, out := runInProcess(t, logEnv, "logs", "--store", reps[1].store, "--run", run, "--replica", "r01")
	if code != 0 || strings.Count(out, "\n")+1 != 200 {
		t.Errorf("collector logs --replica r01 = %d, %d lines; want 0, 200", code, strings.Count(out, "\n")+1)
	}
}

// partOf reports whether the log holds a completed part of an upload to a
// path ending in suffix.
func partOf(log []storetest.Request, suffix string) bool {
	for _, r := range log {
		if strings.HasSuffix(r.Path, suffix) && r.Method == http.MethodPut && r.Query.Has("partNumber") && r.Status == http.StatusOK {
			return true
		}
	}
	return false
}
