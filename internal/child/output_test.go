package child

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readLines reads the capture to its end and returns its lines as
// "stream:text", a partial line (or piece) ending in "+".
func readLines(t *testing.T, c *Capture, each func(Line)) []string {
	t.Helper()
	var got []string
	done, err := c.Read(func(l Line) error {
		if l.Time.IsZero() {
			t.Errorf("line %q has no time", l.Text)
		}
		s := l.Stream + ":" + string(l.Text)
		if l.Partial {
			s += "+"
		}
		got = append(got, s)
		if each != nil {
			each(l)
		}
		return nil
	}, nil)
	if err != nil || !done {
		t.Fatalf("Read = %v, %v; want done", done, err)
	}
	return got
}

// TestOutputPassesThroughAndCapturesLines: what the command writes reaches
// the pass-through writer byte for byte, however it is cut into writes, and
// its lines come out in order, a partial last line marked as such.
func TestOutputPassesThroughAndCapturesLines(t *testing.T) {
	var pass bytes.Buffer
	c := NewCapture(CaptureConfig{MaxLine: 1024})
	o := c.Output("stdout", &pass)
	written := "epoch 1\nloss 0.5\r\n\nno newline at the end"
	for _, chunk := range []string{"epo", "ch 1\nloss", " 0.5\r\n\n", "no newline at the end"} {
		if n, err := o.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	o.Close()
	if pass.String() != written {
		t.Errorf("passed through %q, want %q", pass.String(), written)
	}
	got := readLines(t, c, nil)
	want := []string{"stdout:epoch 1", "stdout:loss 0.5\r", "stdout:", "stdout:no newline at the end+"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestOutputSplitsLongLines: a line longer than the limit comes out in
// pieces of the limit, all but the last marked partial; nothing is lost.
func TestOutputSplitsLongLines(t *testing.T) {
	c := NewCapture(CaptureConfig{MaxLine: 4})
	o := c.Output("stderr", &bytes.Buffer{})
	o.Write([]byte("abcdefghij\nxy"))
	o.Write([]byte("zuvw\n"))
	o.Close()
	got := readLines(t, c, nil)
	want := []string{"stderr:abcd+", "stderr:efgh+", "stderr:ij", "stderr:xyzu+", "stderr:vw"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pieces = %q, want %q", got, want)
	}
}

// printLines is a shell command printing n numbered lines, the even ones on
// stdout and the odd ones on stderr.
func printLines(n int) []string {
	return []string{"awk", fmt.Sprintf(`BEGIN { for (i = 0; i < %d; i++) { if (i %% 2) print "line " i > "/dev/stderr"; else print "line " i } }`, n)}
}

// checkStreams checks that lines holds every line of printLines(n) once,
// each stream's in order.
func checkStreams(t *testing.T, lines []string, n int) {
	t.Helper()
	next := map[string]int{"stdout": 0, "stderr": 1}
	for _, l := range lines {
		stream, text, _ := strings.Cut(l, ":")
		if want := fmt.Sprintf("line %d", next[stream]); text != want {
			t.Fatalf("%s line %q, want %q", stream, text, want)
		}
		next[stream] += 2
	}
	if len(lines) != n {
		t.Errorf("captured %d lines, want %d", len(lines), n)
	}
}

// TestCaptureSpillsWhatTheReaderHasNotTaken: a command printing far more
// than the capture's memory while the reader stops still has every line
// captured once, in order, through the spill file; the command is never
// held up (it ends while the reader waits for it to), and the spill file is
// gone at the end.
func TestCaptureSpillsWhatTheReaderHasNotTaken(t *testing.T) {
	const n = 200_000
	spill := filepath.Join(t.TempDir(), "output.spill")
	c := NewCapture(CaptureConfig{Memory: 64 << 10, SpillPath: spill, SpillLimit: 64 << 20, MaxLine: 1024})
	var stdout, stderr bytes.Buffer
	out, errs := c.Output("stdout", &stdout), c.Output("stderr", &stderr)
	ran := make(chan struct{})
	done := make(chan []string)
	go func() {
		i := 0
		done <- readLines(t, c, func(Line) {
			if i++; i == 20_000 {
				select { // the reader stops: the command gets ahead, to its end
				case <-ran:
				case <-time.After(30 * time.Second):
					t.Error("the command did not end in 30 s while the reader waited: held up")
				}
			}
		})
	}()
	code, err := Command{Args: printLines(n), Stdout: out, Stderr: errs}.Run(context.Background())
	close(ran)
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	out.Close()
	errs.Close()
	lines := <-done
	checkStreams(t, lines, n)
	if d := c.Dropped(); d != 0 {
		t.Errorf("dropped %d lines, want 0", d)
	}
	if got := strings.Count(stdout.String(), "\n") + strings.Count(stderr.String(), "\n"); got != n {
		t.Errorf("passed through %d lines, want %d", got, n)
	}
	if _, err := os.Stat(spill); !os.IsNotExist(err) {
		t.Errorf("spill file left behind: %v", err)
	}
}

// TestCaptureNeverBlocksTheCommand: with nobody reading and no room left
// (memory and spill full), a command that prints far more (1,000,000
// lines, 7.9 MB, against 4.5 MiB of memory at most) runs to its end,
// every byte passes through, and each line is either captured, in order,
// or counted as dropped.
func TestCaptureNeverBlocksTheCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spill bool
	}{{"memory only", false}, {"memory and a small spill", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := CaptureConfig{Memory: bufSize, MaxLine: 1024} // one read
			if tc.spill {
				cfg.SpillPath, cfg.SpillLimit = filepath.Join(t.TempDir(), "output.spill"), bufSize+spillHeader
			}
			c := NewCapture(cfg)
			var pass lockedBuffer
			out := c.Output("stdout", &pass)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, err := Command{Args: []string{"awk", `BEGIN { for (i = 0; i < 1000000; i++) print "line " i }`}, Stdout: out}.Run(ctx)
			if err != nil || code != 0 {
				t.Fatalf("Run = %d, %v; want 0", code, err)
			}
			// Run waits a second at most for the end of the output (under
			// the race detector the pass-through can take longer).
			if n := pass.waitLines(1_000_000, 30*time.Second); n != 1_000_000 {
				t.Errorf("passed through %d lines, want 1,000,000", n)
			}
			out.Close()
			lines := readLines(t, c, nil)
			if len(lines) == 0 || lines[0] != "stdout:line 0" {
				t.Fatalf("captured %d lines, first %q; want the first lines", len(lines), lines[:min(1, len(lines))])
			}
			// What was captured is whole lines, in order: a line whose
			// head was captured and whose end was dropped is counted as
			// dropped, not glued to a later line; every line is counted
			// once, captured or dropped.
			last := -1
			for _, l := range lines {
				var n int
				if _, err := fmt.Sscanf(l, "stdout:line %d", &n); err != nil || l != fmt.Sprintf("stdout:line %d", n) || n <= last {
					t.Fatalf("captured %q after line %d: want whole lines, in order", l, last)
				}
				last = n
			}
			if got := int64(len(lines)) + c.Dropped(); got != 1_000_000 {
				t.Errorf("captured %d + dropped %d lines = %d, want 1,000,000", len(lines), c.Dropped(), got)
			}
			if c.Dropped() == 0 {
				t.Errorf("nothing dropped: the capture held more than its limits")
			}
		})
	}
}

// TestReadStopsAndGoesOn: a Read stopped between blocks by until leaves
// the partial line where it was, and the next Read gives every line once.
func TestReadStopsAndGoesOn(t *testing.T) {
	c := NewCapture(CaptureConfig{MaxLine: 1024})
	o := c.Output("stdout", &bytes.Buffer{})
	o.Write([]byte("one\ntw"))
	o.Write([]byte("o\nthree\n"))
	o.Close()
	var got []string
	fn := func(l Line) error { got = append(got, string(l.Text)); return nil }
	blocks := 0
	done, err := c.Read(fn, func() bool { blocks++; return blocks > 1 })
	if done || err != nil {
		t.Fatalf("first Read = %v, %v; want stopped after one block", done, err)
	}
	if done, err := c.Read(fn, nil); !done || err != nil {
		t.Fatalf("second Read = %v, %v; want done", done, err)
	}
	if strings.Join(got, "|") != "one|two|three" {
		t.Errorf("lines %q, want one, two, three", got)
	}
}

// lockedBuffer is a pass-through writer that a test can read while the
// output is still being copied.
type lockedBuffer struct {
	mu    sync.Mutex
	lines int
	wrote chan struct{} // closed at the next write (nil: no one waits)
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines += bytes.Count(p, []byte("\n"))
	if b.wrote != nil {
		close(b.wrote)
		b.wrote = nil
	}
	return len(p), nil
}

// waitLines waits up to timeout for n lines and returns how many came.
func (b *lockedBuffer) waitLines(n int, timeout time.Duration) int {
	expired := time.After(timeout)
	for {
		b.mu.Lock()
		got := b.lines
		if b.wrote == nil {
			b.wrote = make(chan struct{})
		}
		next := b.wrote
		b.mu.Unlock()
		if got >= n {
			return got
		}
		select {
		case <-next:
		case <-expired:
			return got
		}
	}
}
