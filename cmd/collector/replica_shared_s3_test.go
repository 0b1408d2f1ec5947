package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// sharedWarning is the start of the warning a replica logs for a path that
// another replica writes too.
const sharedWarning = "another replica writes this output's path too"

// TestSharedPathOnS3: three replicas on the S3 server write one path,
// model.pt, one after the other, the highest first: the lowest's bytes are
// at the path and each other's at model.pt.replica-<name>, every object
// names its replica, and the replicas that found the path taken or took it
// warned once, naming both replicas and both keys. Then the highest, which
// ended before the lowest took the path, is retried on a fresh disk: its
// own bytes come back at its own path, and its new version goes to its own
// key, never to the path; the same for the middle one. `collector restore
// --restore all` brings the outputs folder as the store holds it, all names.
func TestSharedPathOnS3(t *testing.T) {
	const run = "shared"
	reps, env, f := replicasOnS3(t, 3)
	envMap := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	root := f.Open(t)
	ctx := context.Background()
	runOne := func(r *replicaS3, command string) string {
		t.Helper()
		p := start(t, t.TempDir(), env, r.args(run, "--", "sh", "-c", command)...)
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("%s exited %d:\n%s", r.name, code, p.stderr.String())
		}
		return p.stderr.String()
	}
	logs := map[string]string{}
	for _, i := range []int{2, 0, 1} {
		r := reps[i]
		logs[r.name] = runOne(r, `echo "from `+r.name+`" > "$COLLECTOR_OUTPUTS_PATH/model.pt"`)
	}
	check := func(want map[string]string) {
		t.Helper()
		got := storetest.Objects(t, root, run+"/outputs/")
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(got) != len(want) {
			t.Errorf("outputs/ holds %v, want %d objects", keys, len(want))
		}
		for key, data := range want {
			if string(got[key]) != data {
				t.Errorf("outputs/%s = %q, want %q", key, got[key], data)
			}
			replica := "r00"
			if name, ok := strings.CutPrefix(key, "model.pt.replica-"); ok {
				replica = name
			}
			if !strings.HasPrefix(key, "model.pt") {
				continue
			}
			attrs, err := root.Attributes(ctx, run+"/outputs/"+key)
			if err != nil {
				t.Fatal(err)
			}
			if got := attrs.Metadata[stores.ReplicaMetadataKey]; got != replica {
				t.Errorf("outputs/%s names replica %q, want %s", key, got, replica)
			}
		}
	}
	check(map[string]string{"model.pt": "from r00\n", "model.pt.replica-r01": "from r01\n", "model.pt.replica-r02": "from r02\n"})
	for name, wantLine := range map[string][]string{
		"r00": {"path=model.pt", "kept_by=r00", "kept_key=model.pt", "copy_of=r02", "copy_key=model.pt.replica-r02"},
		"r01": {"path=model.pt", "kept_by=r00", "kept_key=model.pt", "copy_of=r01", "copy_key=model.pt.replica-r01"},
		"r02": nil, // it ended before the path was taken
	} {
		var lines []string
		for _, line := range strings.Split(logs[name], "\n") {
			if strings.Contains(line, sharedWarning) {
				lines = append(lines, line)
			}
		}
		if len(lines) != len(wantLine) && !(len(wantLine) > 0 && len(lines) == 1) {
			t.Errorf("%s logged %d warnings of the shared path, want %d:\n%s", name, len(lines), min(len(wantLine), 1), logs[name])
			continue
		}
		for _, field := range wantLine {
			if !strings.Contains(lines[0], field+" ") && !strings.HasSuffix(lines[0], field) {
				t.Errorf("%s's warning does not say %s: %s", name, field, lines[0])
			}
		}
	}

	// The higher two again, each on a fresh disk: its own bytes back at its
	// own path, its change to its own key.
	for _, r := range []*replicaS3{reps[2], reps[1]} {
		if err := os.RemoveAll(r.dir); err != nil {
			t.Fatal(err)
		}
		runOne(r, `o="$COLLECTOR_OUTPUTS_PATH"; cat "$o/model.pt" > "$o/restored-`+r.name+`.txt"; echo "new from `+r.name+`" > "$o/model.pt"`)
		restored, err := os.ReadFile(filepath.Join(r.dir, "out", "restored-"+r.name+".txt"))
		if err != nil || string(restored) != "from "+r.name+"\n" {
			t.Errorf("%s's retry found model.pt = %q (%v), want its own version back", r.name, restored, err)
		}
	}
	want := map[string]string{"model.pt": "from r00\n", "model.pt.replica-r01": "new from r01\n", "model.pt.replica-r02": "new from r02\n",
		"restored-r01.txt": "from r01\n", "restored-r02.txt": "from r02\n"}
	check(want)

	// --restore all: the folder as the store holds it.
	dir := t.TempDir()
	code, out := runInProcess(t, envMap, "restore", "--store", reps[1].store, "--run", run, "--replica", "r01", "--restore", "all",
		"--outputs-path", filepath.Join(dir, "out"), "--state-dir", filepath.Join(dir, "state"))
	if code != 0 {
		t.Fatalf("collector restore --restore all = %d:\n%s", code, out)
	}
	got := storetest.Folder(t, filepath.Join(dir, "out"))
	for key, data := range want {
		if string(got[key]) != data {
			t.Errorf("restore all: %s = %q, want %q", key, got[key], data)
		}
	}
	if len(got) != len(want) {
		t.Errorf("restore all brought %v, want %d files", keysOf(got), len(want))
	}
}
