package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// statPolicy returns the scheduling policy in a /proc/<pid>/stat line
// (field 41; the command name in field 2 may hold spaces).
func statPolicy(t *testing.T, line string) int {
	t.Helper()
	i := strings.LastIndexByte(line, ')')
	fields := strings.Fields(line[i+1:]) // from field 3 on
	if i < 0 || len(fields) < 39 {
		t.Fatalf("not a stat line: %q", line)
	}
	p, err := strconv.Atoi(fields[41-3])
	if err != nil {
		t.Fatalf("policy of %q: %v", line, err)
	}
	return p
}

// The collector's threads run SCHED_BATCH (3; the records thread
// SCHED_IDLE, 5), so that they never preempt the job when they wake up;
// the wrapped command, the job, runs at the normal policy (0).
func TestWrapperRunsBehindTheCommand(t *testing.T) {
	dir := t.TempDir()
	script := `cat /proc/self/stat; sleep 0.3; for s in /proc/$PPID/task/*/stat; do cat "$s"; done`
	cmd := exec.Command(fastBinary, "--store", filepath.Join(dir, "store"), "--run", "r", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--log-level", "error", "--", "sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("collector: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("expected the command's stat and the collector's threads', got:\n%s", stdout.String())
	}
	if p := statPolicy(t, lines[0]); p != 0 {
		t.Errorf("the wrapped command runs at policy %d, want 0 (SCHED_OTHER)", p)
	}
	batch := 0
	for _, l := range lines[1:] {
		switch p := statPolicy(t, l); p {
		case 3:
			batch++
		case 5:
		default:
			t.Errorf("a collector thread runs at policy %d, want 3 (SCHED_BATCH) or 5 (SCHED_IDLE): %s", p, l)
		}
	}
	if batch == 0 {
		t.Errorf("no collector thread runs SCHED_BATCH:\n%s", stdout.String())
	}
}
