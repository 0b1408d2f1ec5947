package docker_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/docker"
	"github.com/mlsidecar/collector/internal/docker/dockertest"
)

var t0 = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

// frames reads a whole log as "stream|payload" strings.
func frames(t *testing.T, r *docker.LogReader) []string {
	t.Helper()
	var got []string
	for {
		stream, payload, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(payload)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, stream+"|"+string(b))
	}
}

func TestLogsDemultiplexes(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	e.Write("job", "stdout", t0, "one\n")
	e.Write("job", "stderr", t0.Add(time.Millisecond), "two\n")
	e.Write("job", "stdout", t0.Add(2*time.Millisecond), "a very long line, part one")
	e.Write("job", "stdout", t0.Add(3*time.Millisecond), " and part two\n")
	e.Write("job", "stderr", t0.Add(time.Second+5), "three\n")

	c := docker.New(e.Socket)
	r, err := c.Logs(context.Background(), "job", time.Time{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.TTY() {
		t.Fatal("TTY() = true for a container without a TTY")
	}
	got := strings.Join(frames(t, r), "")
	want := "stdout|2026-12-01T04:00:00.000000000Z one\n" +
		"stderr|2026-12-01T04:00:00.001000000Z two\n" +
		"stdout|2026-12-01T04:00:00.002000000Z a very long line, part one" +
		"stdout|2026-12-01T04:00:00.003000000Z  and part two\n" +
		"stderr|2026-12-01T04:00:01.000000005Z three\n"
	if got != want {
		t.Errorf("frames:\n%s\nwant:\n%s", got, want)
	}

	// since asks for the messages stamped at or after it, to the nanosecond.
	r2, err := c.Logs(context.Background(), "job", t0.Add(time.Second+5), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got, want := strings.Join(frames(t, r2), ""), "stderr|2026-12-01T04:00:01.000000005Z three\n"; got != want {
		t.Errorf("since: %q, want %q", got, want)
	}
	reqs := e.Requests()
	if q := dockertest.Query(reqs[len(reqs)-1]); q.Get("since") != "1796097601.000000005" || q.Get("timestamps") != "1" || q.Get("follow") != "" {
		t.Errorf("request %s: want since=1796097601.000000005, timestamps=1, no follow", reqs[len(reqs)-1])
	}
}

func TestLogsTTYIsOneRawStream(t *testing.T) {
	e := dockertest.New(t)
	e.Add("shell", true)
	e.Write("shell", "stdout", t0, "$ ls\r\n")
	e.Write("shell", "stdout", t0.Add(time.Millisecond), "a b\r\n")
	r, err := docker.New(e.Socket).Logs(context.Background(), "shell", time.Time{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.TTY() {
		t.Fatal("TTY() = false for a TTY container")
	}
	got := frames(t, r)
	want := []string{"stdout|2026-12-01T04:00:00.000000000Z $ ls\r\n2026-12-01T04:00:00.001000000Z a b\r\n"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("frames %q, want %q", got, want)
	}
}

func TestLogsCutMidFrame(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	for i := range 3 {
		e.Write("job", "stdout", t0.Add(time.Duration(i)), "line\n")
	}
	e.CutAfter(1)
	r, err := docker.New(e.Socket).Logs(context.Background(), "job", time.Time{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, p, err := r.Next(); err != nil {
		t.Fatal(err)
	} else if _, err := io.ReadAll(p); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	_, p, err := r.Next()
	if err == nil {
		_, err = io.ReadAll(p)
	}
	if err == nil || err == io.EOF {
		t.Fatalf("a stream cut in the middle of a frame read as %v, want an error", err)
	}
}

func TestLogsFollowEndsWhenTheContainerExits(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	e.Write("job", "stdout", t0, "first\n")
	r, err := docker.New(e.Socket).Logs(context.Background(), "job", time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The first frame read, the reader follows: the container writes a
	// last line and exits.
	stream, payload, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	first, err := io.ReadAll(payload)
	if err != nil {
		t.Fatal(err)
	}
	e.Write("job", "stderr", t0.Add(time.Second), "last\n")
	e.SetStatus("job", "exited", 3)
	got := append([]string{stream + "|" + string(first)}, frames(t, r)...)
	if len(got) != 2 || got[1] != "stderr|2026-12-01T04:00:01.000000000Z last\n" {
		t.Errorf("followed frames %q", got)
	}
}

func TestInspect(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	c := docker.New(e.Socket)
	info, err := c.Inspect(context.Background(), "job")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "job" || !info.State.Running || info.State.Exited() {
		t.Errorf("running container: %+v", info)
	}
	e.SetStatus("job", "exited", 137)
	if info, err = c.Inspect(context.Background(), "job"); err != nil {
		t.Fatal(err)
	}
	if !info.State.Exited() || info.State.ExitCode != 137 {
		t.Errorf("exited container: %+v", info.State)
	}

	_, err = c.Inspect(context.Background(), "nope")
	if !errors.Is(err, docker.ErrNotFound) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Errorf("unknown container: %v, want ErrNotFound with the engine's message", err)
	}
}

func TestNoEngine(t *testing.T) {
	socket := t.TempDir() + "/none.sock"
	_, err := docker.New(socket).Inspect(context.Background(), "job")
	if err == nil || !strings.Contains(err.Error(), socket) {
		t.Errorf("no engine: %v, want an error naming %s", err, socket)
	}
}

func TestStats(t *testing.T) {
	body, err := os.ReadFile("testdata/stats-cgroup2.json")
	if err != nil {
		t.Fatal(err)
	}
	e := dockertest.New(t)
	e.Add("job", false)
	e.SetStats("job", string(body))
	s, err := docker.New(e.Socket).Stats(context.Background(), "job")
	if err != nil {
		t.Fatal(err)
	}
	// (15.302419 - 13.302419) s of CPU over (4825.31 - 4821.31) s of the
	// host's 4 CPUs: 2/4 * 4 * 100 = 200 %, two cores.
	if got, want := s.CPUPercent(), 200.0; got != want {
		t.Errorf("CPUPercent() = %v, want %v", got, want)
	}
	if got, want := s.Memory.WorkingSet(), uint64(209715200-52428800); got != want {
		t.Errorf("WorkingSet() = %d, want %d", got, want)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"memory limit", s.Memory.Limit, 1 << 30},
		{"memory usage", s.Memory.Usage, 209715200},
		{"shmem", s.Memory.Stat["shmem"], 32 << 20},
		{"cpu total", s.CPU.Total, 15302419000},
		{"cpu user", s.CPU.User, 14000000000},
		{"cpu system", s.CPU.System, 4825310000000},
		{"online cpus", uint64(s.CPU.OnlineCPUs), 4},
		{"throttled periods", s.CPU.ThrottledPeriods, 3},
		{"pids", s.PIDs, 7},
		{"block read", s.BlockRead, 4096000 + 4096},
		{"block write", s.BlockWrite, 1 << 20},
		{"eth0 rx", s.Networks["eth0"].RxBytes, 5338},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if got, want := s.PreRead, time.Date(2026, 12, 1, 4, 31, 6, 346930178, time.UTC); !got.Equal(want) {
		t.Errorf("PreRead = %v, want %v", got, want)
	}
	if q := dockertest.Query(e.Requests()[0]); q.Get("stream") != "false" {
		t.Errorf("stats request %s: want stream=false", e.Requests()[0])
	}
}

func TestStatsFirstSampleHasNoRate(t *testing.T) {
	e := dockertest.New(t)
	e.Add("job", false)
	e.SetStats("job", `{"read":"2026-12-01T04:31:07Z","preread":"0001-01-01T00:00:00Z","cpu_stats":{"cpu_usage":{"total_usage":5},"system_cpu_usage":9,"online_cpus":2},"precpu_stats":{"cpu_usage":{"total_usage":0},"system_cpu_usage":0},"memory_stats":{"usage":10,"limit":100,"stats":{"total_inactive_file":4}}}`)
	s, err := docker.New(e.Socket).Stats(context.Background(), "job")
	if err != nil {
		t.Fatal(err)
	}
	if !s.PreRead.IsZero() || s.CPUPercent() != 0 {
		t.Errorf("PreRead %v, CPUPercent %v: want zero and 0", s.PreRead, s.CPUPercent())
	}
	if got := s.Memory.WorkingSet(); got != 6 {
		t.Errorf("cgroup v1 WorkingSet() = %d, want 6 (usage less total_inactive_file)", got)
	}
}

func TestSocketFromEnv(t *testing.T) {
	for _, tc := range []struct{ env, want, err string }{
		{"", docker.DefaultSocket, ""},
		{"unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", ""},
		{"tcp://10.0.0.1:2375", "", "only a unix:// socket"},
	} {
		got, err := docker.SocketFromEnv(func(string) string { return tc.env })
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("DOCKER_HOST=%q: %q, %v; want %q, %q", tc.env, got, err, tc.want, tc.err)
		}
	}
}

// TestFindComposeService: a compose service's container is found by the
// service's name, in the compose project of the container the caller runs
// in, before a container of that name elsewhere on the host; outside a
// project a container's name comes first; a service in two projects, seen
// from outside both, is an error naming both.
func TestFindComposeService(t *testing.T) {
	e := dockertest.New(t)
	compose := func(name, project, service string) {
		e.Add(name, false)
		e.SetLabels(name, map[string]string{docker.LabelProject: project, docker.LabelService: service, docker.LabelOneOff: "False"})
	}
	compose("demo-collector-1", "demo", "collector")
	compose("demo-job-1", "demo", "job")
	compose("other-job-1", "other", "job")
	compose("demo-job-run-1f2e", "demo", "job")
	e.Add("job", false) // a stray container of that name, in no project
	e.SetLabels("demo-job-run-1f2e", map[string]string{docker.LabelProject: "demo", docker.LabelService: "job", docker.LabelOneOff: "True"})
	ctx := context.Background()

	c := docker.New(e.Socket)
	c.Self = e.ID("demo-collector-1")
	got, err := c.Find(ctx, "job")
	if err != nil || got.Name != "demo-job-1" || got.ID != e.ID("demo-job-1") {
		t.Errorf("Find(job) from demo's collector: %q %v, want demo-job-1", got.Name, err)
	}
	if got, err := c.Find(ctx, "other-job-1"); err != nil || got.Name != "other-job-1" {
		t.Errorf("Find(other-job-1): %q %v, want the container of that name", got.Name, err)
	}
	if _, err := c.Find(ctx, "trainer"); !errors.Is(err, docker.ErrNotFound) || !strings.Contains(err.Error(), "No such container or compose service: trainer") {
		t.Errorf("Find(trainer): %v, want ErrNotFound naming it", err)
	}

	outside := docker.New(e.Socket)
	outside.Self = "none"
	if got, err := outside.Find(ctx, "job"); err != nil || got.Name != "job" {
		t.Errorf("Find(job) outside: %q %v, want the container named job", got.Name, err)
	}
	e.Remove("job")
	_, err = outside.Find(ctx, "job")
	if err == nil || !strings.Contains(err.Error(), "demo-job-1 (project demo), other-job-1 (project other)") {
		t.Errorf("Find(job) outside both projects: %v, want an error naming both", err)
	}
	e.Remove("other-job-1")
	if got, err := outside.Find(ctx, "job"); err != nil || got.Name != "demo-job-1" {
		t.Errorf("Find(job) outside, one project left: %q %v, want demo-job-1", got.Name, err)
	}
}
