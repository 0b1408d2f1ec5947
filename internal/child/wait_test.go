package child

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRunDoesNotWaitForBackgroundProcesses: a command that leaves a
// process behind holding its stdout ends when the command ends (not when
// the process does), with its own output read to the end.
func TestRunDoesNotWaitForBackgroundProcesses(t *testing.T) {
	var pass bytes.Buffer
	c := NewCapture(CaptureConfig{})
	out := c.Output("stdout", &pass)
	start := time.Now()
	code, err := Command{Args: []string{"sh", "-c", "sleep 3 2>/dev/null & echo done"}, Stdout: out}.Run(context.Background())
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("Run took %v: it waited for the background sleep", took)
	}
	out.Close()
	if lines := readLines(t, c, nil); len(lines) == 0 || lines[0] != "stdout:done" {
		t.Errorf("lines %q, want %q first", lines, "stdout:done")
	}
}

// TestStartFailureCodes: a command that cannot be started exits as a shell
// says: 127 when there is no such program, 126 when it cannot be run.
func TestStartFailureCodes(t *testing.T) {
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(notExecutable, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prog string
		want int
	}{
		{"no-such-program-anywhere", 127},
		{filepath.Join(dir, "missing"), 127},
		{notExecutable, 126},
		{dir, 126},
	} {
		code, err := Command{Args: []string{tc.prog}}.Run(context.Background())
		if err == nil || code != tc.want {
			t.Errorf("%s: exit %d, %v; want %d and the error", tc.prog, code, err, tc.want)
		}
	}
}
