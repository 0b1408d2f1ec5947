package child

import (
	"bytes"
	"context"
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
