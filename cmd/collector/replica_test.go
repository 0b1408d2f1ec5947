package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

func TestReplicaFromPlatform(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		want, src string
	}{
		{"none", nil, "", ""},
		{"tfjob", map[string]string{"TF_CONFIG": `{"cluster":{"worker":["a:2222","b:2222"]},"task":{"type":"Worker","index":1}}`}, "worker-1", "TF_CONFIG"},
		{"tfjob chief", map[string]string{"TF_CONFIG": `{"task":{"type":"chief","index":0}}`}, "chief-0", "TF_CONFIG"},
		{"tf_config without a task", map[string]string{"TF_CONFIG": `{"cluster":{}}`}, "", ""},
		{"pytorchjob", map[string]string{"RANK": "3", "WORLD_SIZE": "4"}, "rank-3", "RANK"},
		{"rank alone", map[string]string{"RANK": "3"}, "", ""},
		{"indexed job", map[string]string{"JOB_COMPLETION_INDEX": "7", "HOSTNAME": "train-7"}, "train-7", "HOSTNAME"},
		{"jobset", map[string]string{"JOB_COMPLETION_INDEX": "2", "HOSTNAME": "js-workers-1-2"}, "js-workers-1-2", "HOSTNAME"},
		{"indexed job, other hostname", map[string]string{"JOB_COMPLETION_INDEX": "7", "HOSTNAME": "train-7-x8k2p"}, "index-7", "JOB_COMPLETION_INDEX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := replicaFromPlatform(func(k string) string { return tc.env[k] })
			if got != tc.want || src != tc.src {
				t.Errorf("replicaFromPlatform = %q from %q, want %q from %q", got, src, tc.want, tc.src)
			}
		})
	}
}

func TestBadReplica(t *testing.T) {
	work := t.TempDir()
	store := filepath.Join(work, "store")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--replica", "../x"}, nil, `--replica: "../x" is not a valid replica name`},
		{[]string{"--replica", "a/b"}, nil, `--replica: "a/b" is not a valid replica name`},
		{nil, map[string]string{"COLLECTOR_REPLICA": ".hidden"}, `--replica: ".hidden" is not a valid replica name`},
		{nil, map[string]string{"TF_CONFIG": `{"task":{"type":"a b","index":0}}`}, `--replica: TF_CONFIG gives "a b-0", not a valid replica name`},
		{[]string{"--restore", "mine"}, nil, `--restore: "mine" is not a choice; valid: own`},
	} {
		args := append([]string{"--store", store, "--run", "r", "--outputs-path", filepath.Join(work, "out")}, tc.args...)
		code, out := runInProcess(t, tc.env, args...)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("collector %v (env %v) = %d, %q; want exit 2 and %q", tc.args, tc.env, code, out, tc.want)
		}
	}
	if _, err := os.Stat(store); err == nil {
		t.Errorf("the store %s was written by a bad setting", store)
	}
}

// replicaCommand writes 20 files of the replica's own (r<name>/f<j>.txt),
// one file every replica writes (shared.txt), the attempt it saw (and on a
// retry, restored-<attempt>: how many of its files it found), and prints
// lines lines.
func replicaCommand(name string, lines int) string {
	return fmt.Sprintf(`o="$COLLECTOR_OUTPUTS_PATH"; mkdir -p "$o/%[1]s"; `+
		`if [ "$COLLECTOR_ATTEMPT" -gt 1 ]; then ls "$o/%[1]s" | grep -c '^f' > "$o/%[1]s/restored-$COLLECTOR_ATTEMPT"; fi; `+
		`for j in $(seq 1 20); do echo "%[1]s $j" > "$o/%[1]s/f$j.txt"; done; `+
		`echo "from %[1]s" > "$o/shared.txt"; echo "$COLLECTOR_ATTEMPT" > "$o/%[1]s/attempt-$COLLECTOR_ATTEMPT"; `+
		`i=1; while [ $i -le %[2]d ]; do echo "%[1]s line $i"; i=$((i+1)); done`, name, lines)
}

// TestReplicasKeepTheirOwnState: three replicas on one run (a folder store)
// keep their own state and attempt count under replicas/<name>/, write one
// outputs folder, and a replica retried on a fresh disk gets attempt 2 and
// its own files back, not the others', and changes nothing of theirs.
func TestReplicasKeepTheirOwnState(t *testing.T) {
	work := t.TempDir()
	store := filepath.Join(work, "store")
	names := []string{"worker-0", "worker-1", "worker-2"}
	args := func(name string) []string {
		return []string{"--store", store, "--run", "dist", "--replica", name,
			"--outputs-path", filepath.Join(work, name, "out"), "--state-dir", filepath.Join(work, name, "state"),
			"--sync-interval", "0.3", "--settle", "0.05", "--resources-interval", "0.2",
			"--", "sh", "-c", replicaCommand(name, 50)}
	}
	var procs []*process
	for _, n := range names {
		procs = append(procs, start(t, work, nil, args(n)...))
	}
	for i, p := range procs {
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("replica %s exited %d:\n%s", names[i], code, p.stderr.String())
		}
	}
	root := storetest.Folder(t, store)
	for _, n := range names {
		for j := 1; j <= 20; j++ {
			key := fmt.Sprintf("dist/outputs/%s/f%d.txt", n, j)
			if got, want := string(root[key]), fmt.Sprintf("%s %d\n", n, j); got != want {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
		}
		for _, key := range []string{".collector/state.json", "resources/summary.json"} {
			if _, ok := root["dist/replicas/"+n+"/"+key]; !ok {
				t.Errorf("dist/replicas/%s/%s is not in the store", n, key)
			}
		}
	}
	// The file all three write, on a folder store (the replica's name in
	// an extended attribute, a copy aside by a hard link): the lowest's at
	// the path, each other's at its own key.
	for _, n := range names {
		key := "dist/outputs/shared.txt.replica-" + n
		if n == names[0] {
			key = "dist/outputs/shared.txt"
		}
		if got, want := string(root[key]), "from "+n+"\n"; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, ok := root["dist/.collector/state.json"]; ok {
		t.Error("dist/.collector/state.json is in the store: a distributed run keeps its state per replica")
	}
	checkRunSummary(t, root, "dist", names)
	checkReplicaLogs(t, []string{"--store", store, "--run", "dist"}, nil, names, 50)

	// worker-1 again, on a fresh disk.
	if err := os.RemoveAll(filepath.Join(work, "worker-1")); err != nil {
		t.Fatal(err)
	}
	before := storetest.Folder(t, store)
	p := start(t, work, nil, args("worker-1")...)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("worker-1's retry exited %d:\n%s", code, p.stderr.String())
	}
	out := storetest.Folder(t, filepath.Join(work, "worker-1", "out"))
	if _, ok := out["worker-1/attempt-2"]; !ok {
		t.Errorf("worker-1's retry did not see attempt 2; its outputs folder: %v", keysOf(out))
	}
	for k := range out {
		if strings.HasPrefix(k, "worker-0/") || strings.HasPrefix(k, "worker-2/") {
			t.Errorf("worker-1's retry restored %s, another replica's file", k)
		}
	}
	// The run's page has a track of each replica's attempt.
	page := filepath.Join(work, "report.html")
	if code, out := runInProcess(t, nil, "report", "--store", store, "--run", "dist", "-o", page); code != 0 {
		t.Fatalf("collector report = %d: %s", code, out)
	}
	html, _ := os.ReadFile(page)
	for _, want := range []string{"worker-0 · attempt 1", "worker-2 · attempt 1", "worker-1 · attempt 2"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the run's page does not name %q", want)
		}
	}
	after := storetest.Folder(t, store)
	for k, v := range before {
		// worker-1's own, and the run's summary (the sum over replicas,
		// written again at each replica's end, from each one's copy).
		if strings.HasPrefix(k, "dist/replicas/worker-1/") || k == "dist/outputs/shared.txt" || k == "dist/resources/summary.json" || k == "dist/resources/replicas/worker-1.json" {
			continue
		}
		if string(after[k]) != string(v) {
			t.Errorf("%s changed by worker-1's retry", k)
		}
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// checkRunSummary checks the run's resources summary: one entry per replica,
// each the replica's own summary, and core-seconds their sum.
func checkRunSummary(t *testing.T, root map[string][]byte, run string, names []string) {
	t.Helper()
	var sum struct {
		CPU struct {
			CoreSeconds float64 `json:"core_seconds"`
		} `json:"cpu"`
		Replicas map[string]json.RawMessage `json:"replicas"`
	}
	if err := json.Unmarshal(root[run+"/resources/summary.json"], &sum); err != nil {
		t.Fatalf("%s/resources/summary.json: %v", run, err)
	}
	total := 0.0
	for _, n := range names {
		var own struct {
			CPU struct {
				CoreSeconds float64 `json:"core_seconds"`
			} `json:"cpu"`
		}
		if err := json.Unmarshal(root[run+"/replicas/"+n+"/resources/summary.json"], &own); err != nil {
			t.Errorf("replica %s's summary: %v", n, err)
		}
		if _, ok := sum.Replicas[n]; !ok {
			t.Errorf("the run's summary has no entry for replica %s", n)
		}
		total += own.CPU.CoreSeconds
	}
	if len(sum.Replicas) != len(names) || fmt.Sprintf("%.3f", sum.CPU.CoreSeconds) != fmt.Sprintf("%.3f", total) {
		t.Errorf("the run's summary: %d replicas, %.3f core-seconds; want %d, %.3f (the sum)", len(sum.Replicas), sum.CPU.CoreSeconds, len(names), total)
	}
}

// checkReplicaLogs checks what collector logs prints of a distributed run:
// every replica's lines once, in each replica's order, labelled with it, and
// with --replica only that replica's.
func checkReplicaLogs(t *testing.T, args []string, env map[string]string, names []string, lines int) {
	t.Helper()
	code, out := runInProcess(t, env, append([]string{"logs"}, args...)...)
	if code != 0 {
		t.Fatalf("collector logs = %d:\n%s", code, out)
	}
	next := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		var label, name string
		var i int
		if _, err := fmt.Sscanf(l, "%s %s line %d", &label, &name, &i); err != nil || label != "["+name+"]" {
			t.Fatalf("collector logs printed %q; want [replica] replica line N", l)
		}
		if i != next[name]+1 {
			t.Fatalf("replica %s: line %d after line %d", name, i, next[name])
		}
		next[name] = i
	}
	for _, n := range names {
		if next[n] != lines {
			t.Errorf("replica %s: %d lines printed, want %d", n, next[n], lines)
		}
	}
	code, out = runInProcess(t, env, append([]string{"logs", "--replica", names[0]}, args...)...)
	if want := lines; code != 0 || strings.Count(out, "\n")+1 != want || strings.Count(out, "["+names[0]+"] ") != want {
		t.Errorf("collector logs --replica %s = %d, %d lines; want 0, %d lines all of it", names[0], code, strings.Count(out, "\n")+1, want)
	}
	// Following a run whose replicas have ended prints the same and ends.
	code, out = runInProcess(t, env, append([]string{"logs", "--follow", "--follow-interval", "50ms"}, args...)...)
	if want := len(names) * lines; code != 0 || strings.Count(out, "\n")+1 != want {
		t.Errorf("collector logs --follow = %d, %d lines; want 0, %d lines:\n%s", code, strings.Count(out, "\n")+1, want, out)
	}
}

// TestReplicaGetsItsCopyBackOnAFolderStore: replica b stores model.pt and
// ends; replica a, lower, then takes the path and moves b's copy aside. b
// retried on a fresh disk gets its own bytes back at model.pt: on a folder
// store the replica that stored an object is in the file's extended
// attribute, which the restore reads through the store, not the bucket.
func TestReplicaGetsItsCopyBackOnAFolderStore(t *testing.T) {
	work := t.TempDir()
	store := filepath.Join(work, "store")
	run := func(name, content string) {
		t.Helper()
		out := filepath.Join(work, name, "out")
		if content != "" {
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "model.pt"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := start(t, work, nil, "--store", store, "--run", "dist", "--replica", name,
			"--outputs-path", out, "--state-dir", filepath.Join(work, name, "state"), "--sync-interval", "0", "--", "true")
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("replica %s exited %d:\n%s", name, code, p.stderr.String())
		}
	}
	run("b", "from b\n")
	run("a", "from a\n")
	root := storetest.Folder(t, store)
	if got := string(root["dist/outputs/model.pt"]); got != "from a\n" {
		t.Fatalf("dist/outputs/model.pt = %q, want a's", got)
	}
	if got := string(root["dist/outputs/model.pt.replica-b"]); got != "from b\n" {
		t.Fatalf("dist/outputs/model.pt.replica-b = %q, want b's", got)
	}
	if err := os.RemoveAll(filepath.Join(work, "b")); err != nil {
		t.Fatal(err)
	}
	run("b", "")
	got, err := os.ReadFile(filepath.Join(work, "b", "out", "model.pt"))
	if err != nil || string(got) != "from b\n" {
		t.Errorf("b's retry restored model.pt = %q (%v), want its own copy %q", got, err, "from b\n")
	}
}
