package logs

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/mlsidecar/collector/internal/child"
)

// CommandSource is the wrapped command's stdout and stderr, line by line,
// as its child.Capture holds them. It cannot go back: its lines are read
// once, and a full spool drops its oldest unsent lines rather than slow the
// command down.
type CommandSource struct {
	container string
	capture   *child.Capture
	reported  int64 // dropped lines already noted
}

// NewCommandSource reads the lines of the command's captured streams,
// labelled with container.
func NewCommandSource(container string, capture *child.Capture) *CommandSource {
	return &CommandSource{container: container, capture: capture}
}

// Name is "command".
func (s *CommandSource) Name() string { return "command" }

// Unpaced: the command is never blocked by the spool.
func (s *CommandSource) Unpaced() {}

// commandPosition is the position of every command line: the command's
// lines cannot be read again, so any line is a place to close a chunk.
var commandPosition = Position(`{}`)

// Run passes on the lines until the capture is read to its end (the
// command exited and its output was read). It does not stop at ctx: the
// capture ends once the command is gone.
//
// While the command runs, it reads on a thread of low priority, so that
// the command and the pass-through of its output come first: a burst of
// output waits in the capture and is made into records behind the command.
// Once the command is gone, or should the capture get far behind (a
// command that keeps every core busy and prints fast), reading goes on at
// normal priority, so that the rest is stored within the shutdown budget
// and no line is dropped for want of CPU.
func (s *CommandSource) Run(_ context.Context, _ Position, emit func(Record, Position) error) error {
	line := func(l child.Line) error {
		r := Record{Time: l.Time, Container: s.container, Stream: l.Stream, Value: l.Text, Continued: l.Partial}
		if err := emit(r, commandPosition); err != nil {
			return err
		}
		return s.noteDropped(emit)
	}
	type result struct {
		done bool
		err  error
	}
	yielding := make(chan result, 1)
	// The low-priority thread gets a processor of its own in the Go
	// scheduler: while the OS holds it back, it must not hold back the
	// goroutines that pass the command's output through.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	go func() {
		child.LowestPriorityThread() // this goroutine's thread ends with it
		done, err := s.capture.Read(line, func() bool { return s.capture.Ended() || s.capture.FarBehind() })
		yielding <- result{done, err}
	}()
	r := <-yielding
	runtime.SetDefaultGOMAXPROCS()
	if r.err == nil && !r.done {
		r.done, r.err = s.capture.Read(line, nil)
	}
	if r.err != nil {
		return r.err
	}
	return s.noteDropped(emit)
}

// noteDropped writes a record saying how many lines the capture dropped
// since the last note: lines it could not hold while the collector was
// behind (they were passed through all the same).
func (s *CommandSource) noteDropped(emit func(Record, Position) error) error {
	d := s.capture.Dropped()
	if d <= s.reported {
		return nil
	}
	n := d - s.reported
	s.reported = d
	return emit(Record{Time: time.Now(), Container: s.container, Stream: "stderr", Dropped: n,
		Value: []byte(fmt.Sprintf("collector: %d lines of this command's output were not collected: the collector fell behind and its capture buffer was full (they were passed through)", n))}, commandPosition)
}
