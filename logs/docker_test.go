package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/internal/docker/dockertest"
)

func testDockerSource(t *testing.T, e *dockertest.Engine, container string) *dockerSource {
	t.Helper()
	src, err := NewDockerSource(container, e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*dockerSource)
	s.retry = backoff.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	s.client.Self = "none" // outside any compose project
	return s
}

// dockerLines writes n messages from line first on, alternating stdout and
// stderr, and returns the records the source must give for them. Line 21
// is a long line the engine split in two partial messages.
func dockerLines(e *dockertest.Engine, id string, first, n int) []string {
	var want []string
	for i := first; i < first+n; i++ {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		text := fmt.Sprintf("line %d on %s", i, stream)
		if i == 21 {
			stream = "stdout"
			e.Write(id, stream, stamp(i), "the first part of a long line, ")
			want = append(want, stamp(i).Format(time.RFC3339Nano)+"|stdout|the first part of a long line, +")
			text = "and its second part"
		}
		e.Write(id, stream, stamp(i), text+"\n")
		want = append(want, stamp(i).Format(time.RFC3339Nano)+"|"+stream+"|"+text)
	}
	return want
}

func TestDockerSourceAcrossCutStreams(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	want := dockerLines(e, "job", 0, 40)
	// Four streams are cut in the middle of a frame: after 7 frames,
	// after 3 (all of them lines passed before), at once, after 15.
	e.CutAfter(7, 3, 0, 15)

	src := testDockerSource(t, e, "job")
	var rec remoteRecorder
	wait := runSource(context.Background(), src, nil, &rec)
	rec.waitFor(t, len(want))
	// Lines written while the source follows, then the container exits.
	want = append(want, dockerLines(e, "job", 40, 10)...)
	e.Write("job", "stdout", stamp(50), "the last bytes, without a newline")
	want = append(want, stamp(50).Format(time.RFC3339Nano)+"|stdout|the last bytes, without a newline+")
	e.SetStatus("job", "exited", 0)
	if err := wait(t); err != nil {
		t.Fatalf("Run after the container exited: %v, want nil", err)
	}
	sameRecords(t, rec.records(), want)

	// Each reconnect asked from the second of the last line passed.
	var sinces []string
	for _, r := range e.Requests() {
		if q := dockertest.Query(r); strings.Contains(r, "/logs") {
			sinces = append(sinces, q.Get("since"))
		}
	}
	if len(sinces) < 5 || sinces[0] != "" || sinces[1] != "1796097600.000000000" {
		t.Errorf("since of each logs request: %q; want none first, then 1796097600.000000000 (the second of line 6, the last whole frame)", sinces)
	}
}

func TestDockerSourceResumesFromPosition(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	want := dockerLines(e, "job", 0, 30)
	e.SetStatus("job", "exited", 1)

	// The first run stops after 13 records (in the middle of a group of
	// lines sharing one timestamp), as the collector does when killed;
	// a new one resumes from the position of the last record.
	first := remoteRecorder{stopAfter: 13}
	err := runSource(context.Background(), testDockerSource(t, e, "job"), nil, &first)(t)
	if err != errRemoteStop {
		t.Fatalf("Run: %v, want the error emit returned", err)
	}
	// The container exited before this source started: it reads the
	// rest, then waits for a new start until the run ends.
	var second remoteRecorder
	ctx, cancel := context.WithCancel(context.Background())
	wait := runSource(ctx, testDockerSource(t, e, "job"), first.position(), &second)
	second.waitFor(t, len(want)-len(first.records()))
	cancel()
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, append(first.records(), second.records()...), want)
}

func TestDockerSourceTTY(t *testing.T) {
	e := dockertest.New(t)
	e.Add("shell", true)
	long := strings.Repeat("0123456789", 60<<10) // 600 KiB: three records
	e.Write("shell", "stdout", stamp(0), "$ make\r\n")
	e.Write("shell", "stdout", stamp(1), long+"\r\n")
	e.Write("shell", "stdout", stamp(2), "done\r\n")
	e.Write("shell", "stdout", stamp(3), "$ ")
	// The first stream is cut in the middle of the long line, after the
	// source emitted its first piece.
	e.CutAfter(1)
	src := testDockerSource(t, e, "shell")
	var rec remoteRecorder
	wait := runSource(context.Background(), src, nil, &rec)
	rec.waitFor(t, 1)
	e.SetStatus("shell", "exited", 0)
	if err := wait(t); err != nil {
		t.Fatal(err)
	}

	got := rec.records()
	ts := func(i int) string { return stamp(i).Format(time.RFC3339Nano) + "|stdout|" }
	if len(got) < 4 || got[0] != ts(0)+"$ make" || got[len(got)-2] != ts(2)+"done" || got[len(got)-1] != ts(3)+"$ " {
		t.Fatalf("records %q", trimmed(got))
	}
	var line strings.Builder
	for i, r := range got[1 : len(got)-2] {
		value, ok := strings.CutPrefix(r, ts(1))
		last := i == len(got)-4
		if !ok || strings.HasSuffix(value, "+") == last || len(value) > remoteLineLimit+1 {
			t.Fatalf("piece %d of the long line: %.80q (last %v)", i, r, last)
		}
		line.WriteString(strings.TrimSuffix(value, "+"))
	}
	if line.String() != long {
		i := 0
		for i < min(line.Len(), len(long)) && line.String()[i] == long[i] {
			i++
		}
		t.Errorf("the long line's pieces give %d bytes, want the line's %d; first difference at %d: %q", line.Len(), len(long), i, trimmed(got))
	}
}

func TestDockerSourceReadsTheRestAtTheEndOfTheRun(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	want := dockerLines(e, "job", 0, 5)
	src := testDockerSource(t, e, "job")
	var rec remoteRecorder
	ctx, cancel := context.WithCancel(context.Background())
	wait := runSource(ctx, src, nil, &rec)
	rec.waitFor(t, len(want))
	want = append(want, dockerLines(e, "job", 5, 3)...)
	cancel()
	if err := wait(t); err != nil {
		t.Fatalf("Run at the end of the run: %v, want nil", err)
	}
	sameRecords(t, rec.records(), want)
}

func TestDockerSourceUnknownContainer(t *testing.T) {
	e := dockertest.New(t)
	src := testDockerSource(t, e, "typo")
	src.notFound = 100 * time.Millisecond
	var rec remoteRecorder
	err := runSource(context.Background(), src, nil, &rec)(t)
	if err == nil || !strings.Contains(err.Error(), "docker:typo: the engine has no such container or compose service") {
		t.Errorf("Run: %v, want an error saying the engine has no container typo", err)
	}
}

// TestDockerSourceRemovedContainer: a container removed (docker compose
// down) is the end of its log, whether the source finds it being removed
// (the engine refuses its log: 409), gone (404), or removed at the end of
// the run: every line is read and Run returns nil.
func TestDockerSourceRemovedContainer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(e *dockertest.Engine)
		endRun bool
	}{
		{"marked for removal", func(e *dockertest.Engine) { e.SetStatus("job", "removing", 0) }, false},
		{"removed", func(e *dockertest.Engine) { e.Remove("job") }, false},
		{"removed, then the run ends", func(e *dockertest.Engine) { e.Remove("job") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := dockertest.New(t)
			e.Add("job", false)
			want := dockerLines(e, "job", 0, 10)
			src := testDockerSource(t, e, "job")
			var rec remoteRecorder
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := runSource(ctx, src, nil, &rec)
			rec.waitFor(t, len(want))
			tc.remove(e)
			if tc.endRun {
				cancel()
			}
			if err := wait(t); err != nil {
				t.Fatalf("Run: %v, want nil", err)
			}
			sameRecords(t, rec.records(), want)
		})
	}
}

// TestDockerSourceComposeService: the job named by its compose service
// (no container_name), a container the engine creates after the source
// starts; and a container that had exited before the source started (the
// previous attempt's, which compose starts again for a resumed run) is
// read, then followed again once it restarts.
func TestDockerSourceComposeService(t *testing.T) {
	e := dockertest.New(t)
	src := testDockerSource(t, e, "job")
	var rec remoteRecorder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := runSource(ctx, src, nil, &rec)
	e.WaitRequests(t, "GET /containers/json?", 1)
	e.Add("demo-job-1", false)
	e.SetLabels("demo-job-1", map[string]string{"com.docker.compose.project": "demo", "com.docker.compose.service": "job"})
	want := dockerLines(e, "demo-job-1", 0, 5)
	rec.waitFor(t, len(want))
	e.SetStatus("demo-job-1", "exited", 0)
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, rec.records(), want)

	// A second run of the collector: the job exited before it started.
	src = testDockerSource(t, e, "job")
	var again remoteRecorder
	logsBefore := countRequests(e, "/logs?")
	wait = runSource(ctx, src, rec.position(), &again)
	e.WaitRequests(t, "/logs?", logsBefore+1) // it has asked for the earlier start's log
	e.SetStatus("demo-job-1", "running", 0)
	more := dockerLines(e, "demo-job-1", 5, 5)
	again.waitFor(t, len(more))
	e.SetStatus("demo-job-1", "exited", 0)
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, again.records(), more)
}

// countRequests counts the engine's requests that contain substr.
func countRequests(e *dockertest.Engine, substr string) int {
	n := 0
	for _, r := range e.Requests() {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

func TestDockerSourceUnreadableLogDriver(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	e.SetLogDriver("job", "syslog")
	var rec remoteRecorder
	err := runSource(context.Background(), testDockerSource(t, e, "job"), nil, &rec)(t)
	if err == nil || !strings.Contains(err.Error(), "docker:job: docker logs: 501 Not Implemented: configured logging driver does not support reading") {
		t.Errorf("Run: %v, want the engine's 501 and its message", err)
	}
}

func TestNewDockerSourceErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct{ container, socket, want string }{
		{"-job", file, `"docker:-job": a container's name or ID`},
		{"a/b", file, `"docker:a/b": a container's name or ID`},
		{"job", filepath.Join(dir, "none.sock"), "no Docker socket at " + filepath.Join(dir, "none.sock")},
		{"job", file, file + " is not a socket"},
	} {
		_, err := NewDockerSource(tc.container, tc.socket)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "--logs: ") {
			t.Errorf("NewDockerSource(%q, %q): %v, want an error with %q", tc.container, tc.socket, err, tc.want)
		}
	}
}

func TestSourceNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct{ kind, container, want string }{
		{"k8s", "main", "k8s-main"},
		{"docker", "job-1", "docker-job-1"},
		{"docker", "My_Job.1", "docker-my-job-1-"},
		{"k8s", long, "k8s-" + long[:51] + "-"},
	} {
		got := sourceName(tc.kind, tc.container)
		if !strings.HasPrefix(got, tc.want) || !sourceNamePattern.MatchString(got) {
			t.Errorf("sourceName(%q, %q) = %q, want %q... within [a-z0-9-]{1,64}", tc.kind, tc.container, got, tc.want)
		}
	}
	if sourceName("docker", "a_b") == sourceName("docker", "a.b") {
		t.Error("two containers share a source name")
	}
}
