package logs

import (
	"context"
	"fmt"
	"time"

	"github.com/mlsidecar/collector/internal/child"
)

// CommandSource is the wrapped command's stdout and stderr, line by line,
// as the child.Outputs that pass them through offer them. It cannot go
// back: its lines are read once, and a full spool drops its oldest unsent
// lines rather than slow the command down.
type CommandSource struct {
	container      string
	stdout, stderr *child.Output
	reported       int64 // dropped lines already noted
}

// NewCommandSource reads the lines of the command's two streams, labelled
// with container.
func NewCommandSource(container string, stdout, stderr *child.Output) *CommandSource {
	return &CommandSource{container: container, stdout: stdout, stderr: stderr}
}

// Name is "command".
func (s *CommandSource) Name() string { return "command" }

// Unpaced: the command is never blocked by the spool.
func (s *CommandSource) Unpaced() {}

// commandPosition is the position of every command line: the command's
// lines cannot be read again, so any line is a place to close a chunk.
var commandPosition = Position(`{}`)

// Run passes on the lines until both streams are closed (the command
// exited and its output was read to the end). It does not stop at ctx: the
// streams close once the command is gone.
func (s *CommandSource) Run(_ context.Context, _ Position, emit func(Record, Position) error) error {
	out, errs := s.stdout.Lines(), s.stderr.Lines()
	for out != nil || errs != nil {
		var l child.Line
		var ok bool
		select {
		case l, ok = <-out:
			if !ok {
				out = nil
				continue
			}
		case l, ok = <-errs:
			if !ok {
				errs = nil
				continue
			}
		}
		r := Record{Time: l.Time, Container: s.container, Stream: l.Stream, Value: l.Text, Continued: l.Partial}
		if err := emit(r, commandPosition); err != nil {
			return err
		}
		if err := s.noteDropped(emit); err != nil {
			return err
		}
	}
	return s.noteDropped(emit)
}

// noteDropped writes a record saying how many lines the streams dropped
// since the last note: lines the collector did not take in time (it fell
// behind the command's output; they were passed through all the same).
func (s *CommandSource) noteDropped(emit func(Record, Position) error) error {
	d := s.stdout.Dropped() + s.stderr.Dropped()
	if d <= s.reported {
		return nil
	}
	n := d - s.reported
	s.reported = d
	return emit(Record{Time: time.Now(), Container: s.container, Stream: "stderr", Dropped: n,
		Value: []byte(fmt.Sprintf("collector: %d lines of this command's output were not collected: the collector fell behind (they were passed through)", n))}, commandPosition)
}
