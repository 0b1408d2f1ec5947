package child

import (
	"bytes"
	"io"
	stdsync "sync"
	"sync/atomic"
	"time"
)

// Line is one line of the command's output, without its newline.
type Line struct {
	Stream string    // "stdout" or "stderr"
	Time   time.Time // when it was read
	Text   []byte
	// Partial is set on the last line of a stream that ended without a
	// newline, and on a piece of a line longer than the line limit.
	Partial bool
}

// Output is one of the command's streams: everything written to it goes to
// its pass-through writer unchanged, and its lines are offered on Lines. It
// never blocks the command on a slow reader of Lines: a line that finds the
// buffer full is counted in Dropped instead.
type Output struct {
	stream  string
	pass    io.Writer
	lines   chan Line
	maxLine int
	dropped atomic.Int64

	mu      stdsync.Mutex
	partial []byte
	closed  bool
}

// NewOutput returns the stream named stream (stdout or stderr), passed
// through to pass, with room for buffer lines not yet read and lines cut at
// maxLine bytes.
func NewOutput(stream string, pass io.Writer, buffer, maxLine int) *Output {
	return &Output{stream: stream, pass: pass, lines: make(chan Line, buffer), maxLine: maxLine}
}

// Lines is the stream's lines, closed by Close.
func (o *Output) Lines() <-chan Line { return o.lines }

// Dropped counts the lines no reader took in time.
func (o *Output) Dropped() int64 { return o.dropped.Load() }

// Write passes p through, then offers the lines it completes.
func (o *Output) Write(p []byte) (int, error) {
	n, err := o.pass.Write(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return n, err
	}
	now := time.Now()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			o.partial = append(o.partial, p...)
			for len(o.partial) >= o.maxLine {
				o.offer(Line{Stream: o.stream, Time: now, Text: bytes.Clone(o.partial[:o.maxLine]), Partial: true})
				o.partial = append(o.partial[:0], o.partial[o.maxLine:]...)
			}
			break
		}
		text := p[:i]
		if len(o.partial) > 0 {
			text = append(o.partial, text...)
			o.partial = nil
		} else {
			text = bytes.Clone(text)
		}
		for len(text) > o.maxLine {
			o.offer(Line{Stream: o.stream, Time: now, Text: text[:o.maxLine:o.maxLine], Partial: true})
			text = text[o.maxLine:]
		}
		o.offer(Line{Stream: o.stream, Time: now, Text: text})
		p = p[i+1:]
	}
	return n, err
}

func (o *Output) offer(l Line) {
	select {
	case o.lines <- l:
	default:
		o.dropped.Add(1)
	}
}

// Close offers a partial last line and closes Lines. Writes after Close
// are passed through only.
func (o *Output) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if len(o.partial) > 0 {
		o.offer(Line{Stream: o.stream, Time: time.Now(), Text: o.partial, Partial: true})
		o.partial = nil
	}
	o.closed = true
	close(o.lines)
}
