package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// printLines is a shell command printing n numbered lines on stdout ("out
// i") and stderr ("err i"), mixed, as fast as awk goes.
func printLines(n int) []string {
	return []string{"awk", fmt.Sprintf(`BEGIN { for (i = 0; i < %d; i++) { print "out " i; print "err " i > "/dev/stderr"; if (i %% 1000 == 0) fflush() } }`, n)}
}

func numbered(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

// readLogs runs `collector logs` in-process and returns its stdout.
func readLogs(t *testing.T, env []string, args ...string) string {
	t.Helper()
	extra := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		extra[k] = v
	}
	getenv := func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := runLogs(ctx, args, getenv, &out, &errs); code != 0 {
		t.Fatalf("collector logs %v: exit %d: %s", args, code, errs.String())
	}
	return out.String()
}

// checkRecords checks the records `collector logs --json` printed: each of
// "out 0..n-1" on stdout and "err 0..n-1" on stderr once, in order,
// labelled with the container.
func checkRecords(t *testing.T, jsonl string, container string, n int) {
	t.Helper()
	next := map[string]int{"stdout": 0, "stderr": 0}
	prefix := map[string]string{"stdout": "out", "stderr": "err"}
	for _, line := range strings.Split(strings.TrimSuffix(jsonl, "\n"), "\n") {
		var r struct {
			Timestamp time.Time `json:"timestamp"`
			Container string    `json:"container"`
			Stream    string    `json:"stream"`
			Value     string    `json:"value"`
			Dropped   int       `json:"dropped"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		if r.Dropped > 0 {
			t.Fatalf("lines were dropped: %s", line)
		}
		if r.Container != container || r.Timestamp.IsZero() {
			t.Fatalf("record %s: want container %q and a timestamp", line, container)
		}
		want := fmt.Sprintf("%s %d", prefix[r.Stream], next[r.Stream])
		if r.Value != want {
			t.Fatalf("%s: got %q, want %q (each line once, in order)", r.Stream, r.Value, want)
		}
		next[r.Stream]++
	}
	if next["stdout"] != n || next["stderr"] != n {
		t.Fatalf("read back %d stdout and %d stderr lines, want %d each", next["stdout"], next["stderr"], n)
	}
}

// TestWrapperLogs: 1,000,000 numbered lines mixed on stdout and stderr
// (500,000 each) pass through byte for byte, and `collector logs` gives
// each back once, in order per stream, labelled.
func TestWrapperLogs(t *testing.T) {
	const n = 500_000
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cmd := exec.Command(fastBinary, append([]string{"--store", store, "--run", "wrapped", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--sync-interval", "1", "--log-level", "warn", "--resources-interval", "0",
		"--logs-chunk-size", "256KiB", "--"}, printLines(n)...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("collector: %v\n%s", err, tail(stderr.String()))
	}
	if stdout.String() != numbered("out", n) {
		t.Fatalf("pass-through stdout differs from the command's (%d bytes, want %d)", stdout.Len(), len(numbered("out", n)))
	}
	if stderr.String() != numbered("err", n) {
		t.Fatalf("pass-through stderr differs from the command's (%d bytes, want %d): %s", stderr.Len(), len(numbered("err", n)), tail(stderr.String()))
	}
	chunks, _ := filepath.Glob(filepath.Join(store, "wrapped", "logs", "command.000001.*.jsonl.gz"))
	if len(chunks) < 2 {
		t.Errorf("chunks: %v; want several, named command.<attempt>.<sequence>", chunks)
	}
	checkRecords(t, readLogs(t, nil, "--store", store, "--run", "wrapped", "--json"), "command", n)

	text := readLogs(t, nil, "--store", store, "--run", "wrapped", "--stream", "stderr")
	if text != numbered("err", n) {
		t.Errorf("collector logs --stream stderr: %d bytes, want the command's stderr (%d)", len(text), len(numbered("err", n)))
	}
	if got := readLogs(t, nil, "--store", store, "--run", "wrapped", "--container", "other"); got != "" {
		t.Errorf("--container other printed %d bytes", len(got))
	}
}

func tail(s string) string { return s[max(0, len(s)-4000):] }

// outageProxy is a reverse proxy to a store server that answers 503 to
// every request while it is down, as a store in an outage does.
func outageProxy(t *testing.T, target string) (string, *atomic.Bool, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var refusedChunks atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/logs/") {
				refusedChunks.Add(1)
			}
			http.Error(w, "store down for the test", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &down, &refusedChunks
}

// TestWrapperLogsAcrossAStoreOutage: the S3 server stops answering in the
// middle of the run; the chunks wait in the spool and every line reaches
// the store once the server is back, none twice.
func TestWrapperLogsAcrossAStoreOutage(t *testing.T) {
	f := storetest.S3(t)
	endpoint := os.Getenv("COLLECTOR_TEST_S3_ENDPOINT")
	proxy, down, refused := outageProxy(t, endpoint)
	bucket := strings.SplitN(f.Conn.Schema.Bucket, "/", 4)[2]
	env := []string{
		"AWS_ACCESS_KEY_ID=" + os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY"),
	}
	dir := t.TempDir()
	const n = 3000
	// 3000 lines a stream over about 6 s.
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); if [ $((i %% 100)) = 0 ]; then sleep 0.2; fi; done`, n)
	p := startBinary(t, fastBinary, dir, env, "--store", "s3://"+bucket+"/team/artifacts?endpoint="+proxy, "--run", "outage",
		"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"),
		"--sync-interval", "0.3", "--resources-interval", "0", "--", "sh", "-c", script)
	root := f.Open(t)
	waitFor(t, 30*time.Second, "the first chunk in the store", func() bool {
		return len(storetest.Objects(t, root, "outage/logs/")) > 0
	})
	down.Store(true)
	// The outage lasts until the collector has tried and failed to store
	// two chunks: they wait in the spool.
	waitFor(t, 30*time.Second, "two chunks refused by the store", func() bool { return refused.Load() >= 2 })
	stored := len(storetest.Objects(t, root, "outage/logs/"))
	down.Store(false)
	if code := p.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tail(p.stderr.String()))
	}
	if after := len(storetest.Objects(t, root, "outage/logs/")); after <= stored {
		t.Errorf("chunks: %d during the outage, %d after; want the spooled ones sent after it", stored, after)
	}
	// Read back through S3 directly, with the store named as for the run.
	checkRecords(t, readLogs(t, env, "--store", "s3://"+bucket+"/team/artifacts?endpoint="+endpoint, "--run", "outage", "--json"), "command", n)
}

// TestFileLogsAcrossAKill: a sidecar tails a file that a job keeps
// writing; the collector is SIGKILLed in the middle and started again on
// the same disk. The store ends with every line once, in order.
func TestFileLogsAcrossAKill(t *testing.T) {
	dir := t.TempDir()
	store, state := filepath.Join(dir, "store"), filepath.Join(dir, "state")
	logDir := filepath.Join(dir, "joblogs")
	os.MkdirAll(logDir, 0o755)
	logFile := filepath.Join(logDir, "train.log")
	args := []string{"--store", store, "--run", "killed", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", state, "--sync-interval", "0.2", "--resources-interval", "0", "--logs", "file:" + filepath.Join(logDir, "*.log")}

	// The job: numbered lines, written in pieces, so that the file often
	// ends in a partial line.
	const n = 4000
	stopWriting := make(chan struct{})
	written := make(chan struct{})
	go func() {
		defer close(written)
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; i < n; i++ {
			line := fmt.Sprintf("line %d\n", i)
			f.WriteString(line[:3])
			f.WriteString(line[3:])
			if i%50 == 0 {
				select {
				case <-stopWriting:
				case <-time.After(40 * time.Millisecond):
				}
			}
		}
	}()

	first := startBinary(t, fastBinary, dir, nil, args...)
	waitFor(t, 30*time.Second, "chunks in the store", func() bool {
		m, _ := filepath.Glob(filepath.Join(store, "killed", "logs", "*.jsonl.gz"))
		return len(m) >= 3
	})
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)

	second := startBinary(t, fastBinary, dir, nil, args...)
	<-written
	waitFor(t, 30*time.Second, "the last line read into a chunk", func() bool {
		last := fmt.Sprintf(`"line %d"`, n-1)
		return chunksHold(t, filepath.Join(state, "killed"), last) || chunksHold(t, filepath.Join(store, "killed", "logs"), last)
	})
	if code := second.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("second collector exit %d:\n%s", code, tail(second.stderr.String()))
	}
	close(stopWriting)
	got := readLogs(t, nil, "--store", store, "--run", "killed")
	if got != numbered("line", n) {
		lines := strings.Split(got, "\n")
		seen := map[string]int{}
		var dup, lost int
		for _, l := range lines {
			seen[l]++
			if seen[l] == 2 {
				dup++
			}
		}
		for i := 0; i < n; i++ {
			if seen[fmt.Sprintf("line %d", i)] == 0 {
				lost++
			}
		}
		t.Fatalf("store holds %d lines: %d lost, %d duplicated; want each of %d once, in order", len(lines)-1, lost, dup, n)
	}
	chunks, _ := filepath.Glob(filepath.Join(store, "killed", "logs", "*.jsonl.gz"))
	attempts := map[string]bool{}
	for _, c := range chunks {
		attempts[strings.Split(filepath.Base(c), ".")[1]] = true
	}
	if len(attempts) != 2 {
		t.Errorf("chunks of attempts %v, want 2 attempts", attempts)
	}
}

// TestCollectLogsOff: collectLogs: false writes nothing under <run>/logs/
// and the command's output still passes through.
func TestCollectLogsOff(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	plugins := filepath.Join(dir, "plugins.yaml")
	os.WriteFile(plugins, []byte("plugins:\n  collectLogs: false\n"), 0o644)
	cmd := exec.Command(fastBinary, append([]string{"--store", store, "--run", "off", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--plugins", plugins, "--resources-interval", "0", "--log-level", "error", "--logs", "file:" + filepath.Join(dir, "*.txt"), "--"}, printLines(100)...)...)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a file line\n"), 0o644)
	writeFile(t, filepath.Join(dir, "outputs", "model.txt"), []byte("weights\n"))
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("collector: %v\n%s", err, stderr.String())
	}
	if stdout.String() != numbered("out", 100) || stderr.String() != numbered("err", 100) {
		t.Errorf("pass-through differs from the command's output:\n%s", tail(stderr.String()))
	}
	if _, err := os.Stat(filepath.Join(store, "off", "logs")); !os.IsNotExist(err) {
		t.Errorf("<run>/logs/ exists with collectLogs: false (%v)", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "state", "off", "spool", "logs*")); len(m) > 0 {
		t.Errorf("a logs spool was made: %v", m)
	}

	// Reading back: the run is there without logs (a note, exit 0); a run
	// the store does not hold is a failure, so that a typo is noticed.
	for _, tc := range []struct {
		run  string
		code int
		want string
	}{
		{"off", exitOK, `run "off" has no logs in the store`},
		{"offf", exitFailure, `the store holds nothing of run "offf"`},
	} {
		code, out := runInProcess(t, nil, "logs", "--store", store, "--run", tc.run)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("collector logs --run %s: exit %d, %q; want exit %d saying %q", tc.run, code, out, tc.code, tc.want)
		}
	}
}

// TestLogsBadInput: bad log settings exit 2 naming the setting.
func TestLogsBadInput(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--store", filepath.Join(dir, "store"), "--run", "bad", "--outputs-path", filepath.Join(dir, "out"), "--state-dir", filepath.Join(dir, "state")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--logs", "syslog:x", "--", "true"}, "--logs"},
		{[]string{"--logs", "file:", "--", "true"}, "--logs"},
		{[]string{"--logs", "file:[", "--", "true"}, "not a glob"},
		{[]string{"--logs", "docker:job", "--", "true"}, "docker plugin"},
		{[]string{"--logs", "k8s:Not_A_Name", "--", "true"}, "--logs"},
		{[]string{"--logs-chunk-size", "10", "--", "true"}, "--logs-chunk-size"},
		{[]string{"--logs-spool-limit", "1MiB", "--", "true"}, "--logs-spool-limit"},
		{[]string{"--logs-line-limit", "10", "--", "true"}, "--logs-line-limit"},
	} {
		code, out := runInProcess(t, nil, append(common, tc.args...)...)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 naming %s", tc.args, code, out, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); !os.IsNotExist(err) {
		t.Errorf("the store was written to")
	}
	for _, args := range [][]string{
		{"logs", "--store", dir, "--run", "r", "--stream", "both"},
		{"logs", "--store", dir},
		{"logs", "--store", dir, "--run", "../x"},
	} {
		code, out := runInProcess(t, nil, args...)
		if code != exitUsage || !strings.Contains(out, "--") {
			t.Errorf("%v: exit %d, %q; want exit 2 naming the setting", args, code, out)
		}
	}
}

// TestLogsEveryStoreKind: the wrapper's lines go to each kind of store and
// `collector logs` reads them back from it, with the connections file as
// the run had it.
func TestLogsEveryStoreKind(t *testing.T) {
	storetest.Each(t, func(t *testing.T, f storetest.Fixture) {
		t.Parallel()
		dir := t.TempDir()
		cmd := exec.Command(fastBinary, append([]string{"--connections", f.Connections, "--run", "kinds",
			"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"),
			"--sync-interval", "0.3", "--resources-interval", "0", "--log-level", "warn", "--"}, printLines(2000)...)...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), f.Env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("collector: %v\n%s", err, tail(stderr.String()))
		}
		checkRecords(t, readLogs(t, f.Env, "--connections", f.Connections, "--run", "kinds", "--json"), "command", 2000)
	})
}

// TestWrapperLogsAcrossAKill: the wrapped command's lines cannot be read
// again, so what the collector captured reaches its open chunk's file within
// a tick; a collector killed with SIGKILL (its chunk neither sealed nor
// aged: the sync interval is a minute) and started again on the same disk
// stores them: each line once, in order.
func TestWrapperLogsAcrossAKill(t *testing.T) {
	dir := t.TempDir()
	store, state := filepath.Join(dir, "store"), filepath.Join(dir, "state")
	printed, sleeper := filepath.Join(dir, "printed"), filepath.Join(dir, "sleeper.pid")
	const n = 20000
	job := fmt.Sprintf(`awk 'BEGIN { for (i = 0; i < %d; i++) print "out " i }'; touch %s; echo $$ > %s; exec sleep 60`, n, printed, sleeper)
	args := []string{"--store", store, "--run", "wk", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", state, "--sync-interval", "60", "--resources-interval", "0"}
	first := startBinary(t, fastBinary, dir, nil, append(args, "--", "sh", "-c", job)...)
	t.Cleanup(func() {
		if pid, err := os.ReadFile(sleeper); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	waitFor(t, 30*time.Second, "the command's lines printed", func() bool {
		_, err := os.Stat(printed)
		return err == nil
	})
	waitFor(t, 30*time.Second, "the last line in the open chunk's file", func() bool {
		return chunksHold(t, filepath.Join(state, "wk"), fmt.Sprintf(`"out %d"`, n-1))
	})
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)
	if m, _ := filepath.Glob(filepath.Join(store, "wk", "logs", "*")); len(m) > 0 {
		t.Fatalf("a chunk reached the store before the kill (%v): the test would not test the open chunk", m)
	}

	second := exec.Command(fastBinary, append(args, "--", "true")...)
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	if err := second.Run(); err != nil {
		t.Fatalf("second collector: %v\n%s", err, tail(out.String()))
	}
	got := readLogs(t, nil, "--store", store, "--run", "wk")
	if got != numbered("out", n) {
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		t.Fatalf("the store holds %d lines (first %q, last %q); want out 0 to out %d, once each, in order\n%s",
			len(lines), lines[0], lines[len(lines)-1], n-1, tail(out.String()))
	}
	if !strings.Contains(out.String(), "sealed the lines a killed collector left in an open chunk") {
		t.Errorf("the second collector did not say it sealed the open chunk:\n%s", tail(out.String()))
	}
}

// TestWrapperWhenStdoutIsClosed: `collector -- job | head -2`. The reader
// of the collector's stdout goes away; the command gets its SIGPIPE as it
// would without the collector (a command that never ends by itself ends),
// and the collector is not killed by it: it syncs the outputs and stores
// the lines captured, and exits with the command's code, 128+SIGPIPE.
func TestWrapperWhenStdoutIsClosed(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cmd := exec.Command(fastBinary, "--store", store, "--run", "head", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--",
		"sh", "-c", `echo weights > "$COLLECTOR_OUTPUTS_PATH/model.txt"; i=0; while :; do echo "out $i"; i=$((i+1)); done`)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 4096)
	if _, err := io.ReadAtLeast(stdout, first, 100); err != nil {
		t.Fatal(err)
	}
	stdout.Close() // the reader goes, as head does after its lines
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the collector did not end after its stdout was closed (the command never got its SIGPIPE):\n%s", tail(stderr.String()))
	}
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGPIPE) {
		t.Fatalf("exit code %d (%v), want %d, the command's own after its SIGPIPE:\n%s", code, cmd.ProcessState, 128+int(syscall.SIGPIPE), tail(stderr.String()))
	}
	if data, err := os.ReadFile(filepath.Join(store, "head", "outputs", "model.txt")); err != nil || string(data) != "weights\n" {
		t.Errorf("the output in the store: %q, %v", data, err)
	}
	lines := strings.Split(strings.TrimSuffix(readLogs(t, nil, "--store", store, "--run", "head"), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("%d lines stored, want every line the command wrote before its SIGPIPE", len(lines))
	}
	for i, line := range lines {
		if line != fmt.Sprintf("out %d", i) {
			t.Fatalf("line %d stored as %q, want %q: lines lost or out of order", i, line, fmt.Sprintf("out %d", i))
		}
	}
}

// TestLogsFollowEndsWithTheRun: `collector logs --follow` started while a
// wrapped job prints prints every line once, in order, and returns by
// itself once the run has ended (as `kubectl logs -f` does).
func TestLogsFollowEndsWithTheRun(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	p := start(t, dir, nil, "--store", store, "--run", "fol", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--sync-interval", "0.2", "--",
		"sh", "-c", `i=0; while [ $i -lt 40 ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done`)
	var out, errs bytes.Buffer
	followed := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		followed <- runLogs(ctx, []string{"--store", store, "--run", "fol", "--follow", "--follow-interval", "100ms"}, os.Getenv, &out, &errs)
	}()
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("the run exited %d:\n%s", code, p.stderr.String())
	}
	select {
	case code := <-followed:
		if code != 0 {
			t.Fatalf("collector logs --follow: exit %d: %s", code, errs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("collector logs --follow still running 20 s after the run ended; printed:\n%s", out.String())
	}
	var want strings.Builder
	for i := range 40 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if out.String() != want.String() {
		t.Errorf("followed:\n%s\nwant lines 0 to 39, each once, in order", out.String())
	}
}

// chunksHold tells whether a chunk under dir (a run's local folder: its
// spool, open chunks included; or the run's logs/ in a folder store) holds s. An open chunk is read up to what
// its writer flushed.
func chunksHold(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl.gz") || found {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil
		}
		data, _ := io.ReadAll(gz) // an open chunk ends without its trailer
		found = bytes.Contains(data, []byte(s))
		return nil
	})
	return found
}
