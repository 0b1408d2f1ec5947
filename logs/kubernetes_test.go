package logs

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// fakeKube is an API server that speaks the pod and pod log endpoints of
// one pod, ns1/pod1, whose container "main" restarts: each restart is a new
// instance with its own log, and the log of the one before is served with
// previous=true. Like the real API server it checks the bearer token, keeps
// only the second of sinceTime, writes each line after its RFC 3339
// timestamp, and ends a followed stream when the instance terminates.
type fakeKube struct {
	srv    *httptest.Server
	token  string
	policy string // the pod's restartPolicy

	mu        stdsync.Mutex
	instances []*fakeInstance
	changed   chan struct{}
	abort     chan struct{} // closed: open streams drop their connection
	cuts      []int
	requests  []url.Values  // of the log endpoint
	streams   int           // log streams being served
	ended     chan struct{} // closed and replaced when a log stream ends
}

type fakeInstance struct {
	lines      []fakeLine
	terminated bool
	exitCode   int
}

type fakeLine struct {
	at   time.Time
	text string
}

func newFakeKube(t *testing.T, policy string) *fakeKube {
	k := &fakeKube{token: "s3cr3t-token", policy: policy, instances: []*fakeInstance{{}},
		changed: make(chan struct{}), abort: make(chan struct{}), ended: make(chan struct{})}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	k.srv.Config.ErrorLog = nil
	t.Cleanup(k.srv.Close)
	return k
}

// env writes the service account's files and returns the pod's
// environment.
func (k *fakeKube) env(t *testing.T) map[string]string {
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw})
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte(k.token+"\n"), 0o600)
	host, port, _ := net.SplitHostPort(k.srv.Listener.Addr().String())
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":      host,
		"KUBERNETES_SERVICE_PORT":      port,
		"POD_NAME":                     "pod1",
		"POD_NAMESPACE":                "ns1",
		"COLLECTOR_SERVICEACCOUNT_DIR": dir,
	}
}

func (k *fakeKube) source(t *testing.T, env map[string]string) *kubernetesSource {
	t.Helper()
	src, err := NewKubernetesSource("main", func(n string) string { return env[n] })
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*kubernetesSource)
	s.retry = backoff.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	return s
}

func (k *fakeKube) change(f func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f()
	close(k.changed)
	k.changed = make(chan struct{})
}

// write appends lines first..first+n-1 to the running instance and returns
// the records the source must give for them.
func (k *fakeKube) write(first, n int) []string {
	var want []string
	k.change(func() {
		in := k.instances[len(k.instances)-1]
		for i := first; i < first+n; i++ {
			text := fmt.Sprintf("line %d of instance %d", i, len(k.instances)-1)
			in.lines = append(in.lines, fakeLine{stamp(i), text})
			want = append(want, stamp(i).Format(time.RFC3339Nano)+"|stdout|"+text)
		}
	})
	return want
}

// exit terminates the running instance.
func (k *fakeKube) exit(code int) {
	k.change(func() {
		in := k.instances[len(k.instances)-1]
		in.terminated, in.exitCode = true, code
	})
}

// restart starts a new instance of the container (the restart count goes
// up).
func (k *fakeKube) restart() {
	k.change(func() { k.instances = append(k.instances, &fakeInstance{}) })
}

// failAndRestart drops every open log stream, then, before any stream can
// see them, the running instance writes its last lines (first..first+n-1),
// fails and restarts: those lines are only in the previous log.
func (k *fakeKube) failAndRestart(first, n int) []string {
	var want []string
	k.mu.Lock()
	close(k.abort)
	in := k.instances[len(k.instances)-1]
	for i := first; i < first+n; i++ {
		text := fmt.Sprintf("line %d of instance %d", i, len(k.instances)-1)
		in.lines = append(in.lines, fakeLine{stamp(i), text})
		want = append(want, stamp(i).Format(time.RFC3339Nano)+"|stdout|"+text)
	}
	in.terminated, in.exitCode = true, 2
	k.instances = append(k.instances, &fakeInstance{})
	k.mu.Unlock()
	for {
		k.mu.Lock()
		open, ended := k.streams, k.ended
		k.mu.Unlock()
		if open == 0 {
			break
		}
		<-ended
	}
	k.change(func() { k.abort = make(chan struct{}) })
	return want
}

// cutAfter makes the next log streams end abruptly: the i-th writes n[i]
// lines, then half of the next, then drops the connection.
func (k *fakeKube) cutAfter(n ...int) { k.change(func() { k.cuts = append(k.cuts, n...) }) }

func (k *fakeKube) logRequests() []url.Values {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]url.Values(nil), k.requests...)
}

func apiStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
}

func (k *fakeKube) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+k.token {
		apiStatus(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	switch r.URL.Path {
	case "/api/v1/namespaces/ns1/pods/pod1":
		k.pod(w)
	case "/api/v1/namespaces/ns1/pods/pod1/log":
		k.log(w, r)
	default:
		apiStatus(w, http.StatusNotFound, fmt.Sprintf("the server could not find the requested resource (%s)", r.URL.Path))
	}
}

func (k *fakeKube) pod(w http.ResponseWriter) {
	k.mu.Lock()
	in := k.instances[len(k.instances)-1]
	state := map[string]any{"running": map[string]any{"startedAt": "2026-12-01T04:00:00Z"}}
	lastState := map[string]any{}
	if len(k.instances) > 1 {
		lastState = map[string]any{"terminated": map[string]any{"exitCode": k.instances[len(k.instances)-2].exitCode}}
	}
	phase := "Running"
	if in.terminated {
		terminated := map[string]any{"terminated": map[string]any{"exitCode": in.exitCode, "reason": "Completed"}}
		if k.policy == "Never" || (k.policy == "OnFailure" && in.exitCode == 0) {
			state = terminated
			phase = "Succeeded"
			if in.exitCode != 0 {
				phase = "Failed"
			}
		} else {
			// It will restart: the kubelet backs off first.
			state = map[string]any{"waiting": map[string]any{"reason": "CrashLoopBackOff"}}
			lastState = terminated
		}
	}
	pod := map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{"name": "pod1", "namespace": "ns1"},
		"spec": map[string]any{"restartPolicy": k.policy, "containers": []any{
			map[string]any{"name": "main", "image": "job"}, map[string]any{"name": "collector", "image": "collector"}}},
		"status": map[string]any{"phase": phase, "containerStatuses": []any{
			map[string]any{"name": "main", "restartCount": len(k.instances) - 1, "state": state, "lastState": lastState},
			map[string]any{"name": "collector", "restartCount": 0, "state": map[string]any{"running": map[string]any{}}}}},
	}
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(pod)
}

func (k *fakeKube) log(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k.mu.Lock()
	k.requests = append(k.requests, q)
	k.mu.Unlock()
	if q.Get("container") != "main" {
		apiStatus(w, http.StatusBadRequest, fmt.Sprintf("container %s is not valid for pod pod1", q.Get("container")))
		return
	}
	if q.Get("timestamps") != "true" {
		apiStatus(w, http.StatusBadRequest, "fakeKube serves timestamps=true only")
		return
	}
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			apiStatus(w, http.StatusBadRequest, "sinceTime: "+err.Error())
			return
		}
		since = t.Truncate(time.Second) // the API server passes on whole seconds
	}
	follow := q.Get("follow") == "true"
	k.mu.Lock()
	i := len(k.instances) - 1
	if q.Get("previous") == "true" {
		i--
	}
	if i < 0 {
		k.mu.Unlock()
		apiStatus(w, http.StatusBadRequest, `previous terminated container "main" in pod "pod1" not found`)
		return
	}
	in := k.instances[i]
	cut := -1
	if len(k.cuts) > 0 {
		cut, k.cuts = k.cuts[0], k.cuts[1:]
	}
	k.streams++
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.streams--
		close(k.ended)
		k.ended = make(chan struct{})
		k.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	next, written := 0, 0
	for {
		k.mu.Lock()
		lines := in.lines[next:]
		next = len(in.lines)
		terminated := in.terminated
		changed, abort := k.changed, k.abort
		k.mu.Unlock()
		for _, l := range lines {
			if l.at.Before(since) {
				continue
			}
			b := []byte(l.at.Format(time.RFC3339Nano) + " " + l.text + "\n")
			if written == cut {
				w.Write(b[:len(b)/2])
				flusher.Flush()
				panic(http.ErrAbortHandler)
			}
			w.Write(b)
			written++
		}
		flusher.Flush()
		if !follow || terminated {
			return
		}
		select {
		case <-changed:
		case <-abort:
			panic(http.ErrAbortHandler)
		case <-r.Context().Done():
			return
		}
	}
}

func TestKubernetesSourceAcrossCutStreams(t *testing.T) {
	k := newFakeKube(t, "Never")
	want := k.write(0, 30)
	// Four streams are cut in the middle of a line: after 5 lines, after
	// 2 (lines passed before), at once, after 9.
	k.cutAfter(5, 2, 0, 9)
	var rec remoteRecorder
	wait := runSource(context.Background(), k.source(t, k.env(t)), nil, &rec)
	rec.waitFor(t, len(want))
	want = append(want, k.write(30, 10)...) // written while it follows
	k.exit(0)
	if err := wait(t); err != nil {
		t.Fatalf("Run after the container terminated: %v, want nil", err)
	}
	sameRecords(t, rec.records(), want)

	reqs := k.logRequests()
	if len(reqs) < 6 {
		t.Fatalf("%d log requests, want at least 6 (4 cut, 1 followed to the end, 1 drain)", len(reqs))
	}
	for i, q := range reqs {
		if q.Get("timestamps") != "true" || q.Get("previous") != "" {
			t.Errorf("request %d: %v, want timestamps=true and no previous", i, q)
		}
		if i < 5 && q.Get("follow") != "true" {
			t.Errorf("request %d: %v, want follow=true while the container runs", i, q)
		}
	}
	if reqs[0].Get("sinceTime") != "" || reqs[1].Get("sinceTime") != "2026-12-01T04:00:00Z" {
		t.Errorf("sinceTime: first %q, then %q; want none, then 2026-12-01T04:00:00Z", reqs[0].Get("sinceTime"), reqs[1].Get("sinceTime"))
	}
}

func TestKubernetesSourceResumesFromPosition(t *testing.T) {
	k := newFakeKube(t, "Never")
	want := k.write(0, 30)
	k.exit(0)
	env := k.env(t)
	// A collector killed after 13 records (in the middle of lines sharing
	// a timestamp); the next one resumes from the last record's position.
	first := remoteRecorder{stopAfter: 13}
	if err := runSource(context.Background(), k.source(t, env), nil, &first)(t); err != errRemoteStop {
		t.Fatalf("Run: %v, want the error emit returned", err)
	}
	var second remoteRecorder
	if err := runSource(context.Background(), k.source(t, env), first.position(), &second)(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, append(first.records(), second.records()...), want)
}

func TestKubernetesSourceReadsThePreviousInstance(t *testing.T) {
	k := newFakeKube(t, "OnFailure")
	env := k.env(t)
	want := k.write(0, 20)
	first := remoteRecorder{stopAfter: 8}
	if err := runSource(context.Background(), k.source(t, env), nil, &first)(t); err != errRemoteStop {
		t.Fatalf("Run: %v", err)
	}
	// While the collector is down the container fails and restarts: the
	// rest of instance 0 is only in the previous log.
	k.exit(1)
	k.restart()
	want = append(want, k.write(20, 5)...)

	var second remoteRecorder
	wait := runSource(context.Background(), k.source(t, env), first.position(), &second)
	second.waitFor(t, len(want)-8)
	want = append(want, k.write(25, 3)...)
	k.exit(0)
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, append(first.records(), second.records()...), want)

	var previous []url.Values
	for _, q := range k.logRequests() {
		if q.Get("previous") == "true" {
			previous = append(previous, q)
		}
	}
	if len(previous) != 1 || previous[0].Get("sinceTime") != "2026-12-01T04:00:00Z" || previous[0].Get("follow") != "" {
		t.Errorf("previous=true requests: %v; want one, with sinceTime=2026-12-01T04:00:00Z, not followed", previous)
	}
}

func TestKubernetesSourceFollowsARestart(t *testing.T) {
	k := newFakeKube(t, "Always")
	want := k.write(0, 10)
	var rec remoteRecorder
	ctx, cancel := context.WithCancel(context.Background())
	wait := runSource(ctx, k.source(t, k.env(t)), nil, &rec)
	rec.waitFor(t, len(want))
	// The stream drops, the container writes its last lines, fails and
	// restarts before the source reconnects.
	want = append(want, k.failAndRestart(10, 5)...)
	want = append(want, k.write(15, 6)...)
	rec.waitFor(t, len(want))
	// The end of the run: the source reads what is there and returns.
	want = append(want, k.write(21, 2)...)
	cancel()
	if err := wait(t); err != nil {
		t.Fatalf("Run at the end of the run: %v, want nil", err)
	}
	sameRecords(t, rec.records(), want)
	previous := 0
	for _, q := range k.logRequests() {
		if q.Get("previous") == "true" {
			previous++
		}
	}
	if previous == 0 {
		t.Error("no previous=true request after the restart")
	}
}

func TestKubernetesSourceReadsTheEndOfACrashedInstance(t *testing.T) {
	k := newFakeKube(t, "Always")
	want := k.write(0, 10)
	var rec remoteRecorder
	ctx, cancel := context.WithCancel(context.Background())
	wait := runSource(ctx, k.source(t, k.env(t)), nil, &rec)
	rec.waitFor(t, len(want))
	// The stream drops as the container writes its last lines and fails;
	// the run ends while the kubelet backs off before restarting it.
	k.mu.Lock()
	close(k.abort)
	in := k.instances[0]
	for i := 10; i < 14; i++ {
		text := fmt.Sprintf("line %d of instance 0", i)
		in.lines = append(in.lines, fakeLine{stamp(i), text})
		want = append(want, stamp(i).Format(time.RFC3339Nano)+"|stdout|"+text)
	}
	in.terminated, in.exitCode = true, 1
	k.mu.Unlock()
	rec.waitFor(t, len(want))
	cancel()
	if err := wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sameRecords(t, rec.records(), want)
}

func TestKubernetesSourceLongLineCut(t *testing.T) {
	k := newFakeKube(t, "Never")
	long := strings.Repeat("abcdefghij", 60<<10) // 600 KiB
	k.write(0, 1)
	k.change(func() { k.instances[0].lines = append(k.instances[0].lines, fakeLine{stamp(1), long}) })
	k.write(2, 1)
	k.exit(0)
	k.cutAfter(1) // the first stream ends 300 KiB into the long line
	var rec remoteRecorder
	if err := runSource(context.Background(), k.source(t, k.env(t)), nil, &rec)(t); err != nil {
		t.Fatal(err)
	}
	got := rec.records()
	var line strings.Builder
	prefix := stamp(1).Format(time.RFC3339Nano) + "|stdout|"
	for i, r := range got[1 : len(got)-1] {
		value, ok := strings.CutPrefix(r, prefix)
		last := i == len(got)-3
		if !ok || strings.HasSuffix(value, "+") == last || len(value) > remoteLineLimit+1 {
			t.Fatalf("piece %d of the long line: %.80q (last %v)", i, r, last)
		}
		line.WriteString(strings.TrimSuffix(value, "+"))
	}
	if line.String() != long || !strings.HasSuffix(got[0], "line 0 of instance 0") || !strings.HasSuffix(got[len(got)-1], "line 2 of instance 0") {
		t.Errorf("records %q: want line 0, the long line in pieces (%d bytes, got %d), line 2", trimmed(got), len(long), line.Len())
	}
}

func TestKubernetesSourceRefused(t *testing.T) {
	k := newFakeKube(t, "Never")
	env := k.env(t)
	os.WriteFile(filepath.Join(env["COLLECTOR_SERVICEACCOUNT_DIR"], "token"), []byte("expired"), 0o600)
	var rec remoteRecorder
	err := runSource(context.Background(), k.source(t, env), nil, &rec)(t)
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "get on pods and pods/log") {
		t.Errorf("Run with a token the server refuses: %v, want the 401 and the RBAC it needs", err)
	}
	if strings.Contains(fmt.Sprint(err), "expired") {
		t.Errorf("the error shows the token: %v", err)
	}

	src, err := NewKubernetesSource("sidecar", func(n string) string { return k.env(t)[n] })
	if err != nil {
		t.Fatal(err)
	}
	err = runSource(context.Background(), src, nil, &rec)(t)
	if err == nil || !strings.Contains(err.Error(), `the pod has no container "sidecar" (its containers: main, collector)`) {
		t.Errorf("Run for a container the pod lacks: %v", err)
	}
}

func TestNewKubernetesSourceErrors(t *testing.T) {
	k := newFakeKube(t, "Never")
	good := k.env(t)
	dir := good["COLLECTOR_SERVICEACCOUNT_DIR"]
	badCA, noDir := t.TempDir(), t.TempDir()+"/none"
	os.WriteFile(filepath.Join(badCA, "token"), []byte("t"), 0o600)
	os.WriteFile(filepath.Join(badCA, "ca.crt"), []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name      string
		container string
		env       map[string]string // changes to good; "" unsets
		want      string
	}{
		{"container", "Main_1", nil, `"k8s:Main_1": a container name is a DNS label`},
		{"host", "main", map[string]string{"KUBERNETES_SERVICE_HOST": ""}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"},
		{"pod", "main", map[string]string{"POD_NAME": ""}, "set POD_NAME (or COLLECTOR_POD_NAME) from the downward API"},
		{"namespace", "main", map[string]string{"POD_NAMESPACE": ""}, "set POD_NAMESPACE (or COLLECTOR_POD_NAMESPACE)"},
		{"token", "main", map[string]string{"COLLECTOR_SERVICEACCOUNT_DIR": noDir}, "service-account token " + noDir + "/token: no such file or directory"},
		{"ca", "main", map[string]string{"COLLECTOR_SERVICEACCOUNT_DIR": badCA}, filepath.Join(badCA, "ca.crt") + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for n, v := range good {
				env[n] = v
			}
			for n, v := range tc.env {
				env[n] = v
			}
			_, err := NewKubernetesSource(tc.container, func(n string) string { return env[n] })
			if err == nil || !strings.HasPrefix(err.Error(), "--logs: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}

	// The namespace from the service account's file; COLLECTOR_POD_NAME
	// over POD_NAME.
	os.WriteFile(filepath.Join(dir, "namespace"), []byte("ns1\n"), 0o600)
	env := map[string]string{}
	for n, v := range good {
		env[n] = v
	}
	env["POD_NAMESPACE"], env["POD_NAME"], env["COLLECTOR_POD_NAME"] = "", "other", "pod1"
	want := k.write(0, 3)
	k.exit(0)
	var rec remoteRecorder
	if err := runSource(context.Background(), k.source(t, env), nil, &rec)(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, rec.records(), want)
}
