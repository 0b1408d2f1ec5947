package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// This file holds what the Kubernetes and Docker sources share: both read
// a container's log from a runtime that stamps each message with its own
// time ("2026-12-01T04:00:00.123456789Z text\n"), both can ask for the
// messages stamped at or after a time (sinceTime, since) and nothing finer,
// and both resume by asking from the last stored message's second and
// dropping what they had passed.

// remoteLineLimit is the longest record a runtime-stamped source emits: a
// longer line becomes several records, all but the last Continued.
const remoteLineLimit = 256 << 10

// stampedPosition is the Position of the Kubernetes and Docker sources: the
// latest runtime timestamp of a message passed, how many messages stamped
// exactly that were passed, and the bytes already emitted of the message
// after them (a line longer than remoteLineLimit stored in part).
type stampedPosition struct {
	// Restarts is the Kubernetes container's restart count of the
	// instance the position is in.
	Restarts int       `json:"restarts,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	N        int       `json:"n,omitempty"`
	Off      int64     `json:"off,omitempty"`
}

func parseStampedPosition(from Position) (stampedPosition, error) {
	var p stampedPosition
	if len(from) == 0 || string(from) == "null" {
		return p, nil
	}
	if err := json.Unmarshal(from, &p); err != nil {
		return p, fmt.Errorf("saved position %s: %w", from, err)
	}
	if p.N < 0 || p.Off < 0 || p.Restarts < 0 || (p.N > 0 && p.Time.IsZero()) {
		return p, fmt.Errorf("saved position %s: negative count, or a count without a time", from)
	}
	return p, nil
}

// stampedCursor tracks a runtime-stamped log through the sessions (HTTP
// streams) that read it, and drops what an earlier session passed.
//
// A session asks for the messages stamped at or after the second of the
// latest timestamp passed (the Kubernetes API keeps only the second of
// sinceTime; the Docker source asks the same way), and gets the log from
// there in the runtime's order. It drops the messages stamped before that
// timestamp and the first N stamped exactly that; from the first message
// not dropped on, everything is new. Exactly once, as long as the runtime's
// timestamps follow its log's order; stdout and stderr are stamped by two
// readers, so two lines of different streams written within the same
// microseconds may be out of order, and a resume falling exactly between
// them gives the later-written one again (never loses one).
type stampedCursor struct {
	restarts int
	at       time.Time // latest timestamp passed
	n        int       // messages stamped at passed
	off      int64     // bytes emitted of the message after them

	// Per session.
	skipping bool  // still dropping what was passed
	skipped  int   // messages stamped at dropped in this session
	trim     int64 // bytes to drop of the first message kept
}

func newStampedCursor(p stampedPosition) *stampedCursor {
	return &stampedCursor{restarts: p.Restarts, at: p.Time, n: p.N, off: p.Off}
}

// since is the time a new session asks from: the second of the latest
// timestamp passed (zero: from the beginning).
func (c *stampedCursor) since() time.Time {
	if c.at.IsZero() {
		return time.Time{}
	}
	return c.at.Truncate(time.Second)
}

// session starts a new read of the log from since().
func (c *stampedCursor) session() {
	c.skipping = !c.at.IsZero()
	c.skipped = 0
	c.trim = c.off
}

// passedBefore tells whether the message stamped ts was passed in an
// earlier session; it is called once per message, in order.
func (c *stampedCursor) passedBefore(ts time.Time) bool {
	if !c.skipping {
		return false
	}
	if ts.Before(c.at) {
		return true
	}
	if ts.Equal(c.at) && c.skipped < c.n {
		c.skipped++
		return true
	}
	c.skipping = false
	return false
}

// pass counts the message stamped ts, emitted whole.
func (c *stampedCursor) pass(ts time.Time) {
	switch {
	case ts.After(c.at):
		c.at, c.n = ts, 1
	case ts.Equal(c.at):
		c.n++
	}
	c.off = 0
}

// position is the cursor as a Position: the JSON of a stampedPosition,
// written by hand: it is made for every record, where json.Marshal would
// cost more than the rest of the line.
func (c *stampedCursor) position() Position {
	b := make([]byte, 1, 96)
	b[0] = '{'
	field := func(name string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if c.restarts != 0 {
		field("restarts")
		b = strconv.AppendInt(b, int64(c.restarts), 10)
	}
	if !c.at.IsZero() {
		field("time")
		b = append(b, '"')
		b = c.at.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if c.n != 0 {
		field("n")
		b = strconv.AppendInt(b, int64(c.n), 10)
	}
	if c.off != 0 {
		field("off")
		b = strconv.AppendInt(b, c.off, 10)
	}
	return append(b, '}')
}

// atEnd says what a message cut by the end of its reader is.
type atEnd int

const (
	// endCut: the connection ended mid-message; the next session reads
	// it again (the bytes already emitted are in the cursor's off).
	endCut atEnd = iota
	// endPartial: a Docker frame; the message is whole and the line goes
	// on in the stream's next message (the record is Continued).
	endPartial
	// endLine: the log is complete (a drained log); the message is the
	// last line, without its newline.
	endLine
)

// stampedReader reads runtime-stamped messages from one byte stream.
type stampedReader struct {
	br      *bufio.Reader
	stripCR bool // a TTY's lines end in \r\n
}

func newStampedReader(stripCR bool) *stampedReader {
	return &stampedReader{br: bufio.NewReaderSize(nil, remoteLineLimit), stripCR: stripCR}
}

// errEmit marks an error emit returned: the component stopping, not the
// stream failing.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

// copy reads r's messages through the cursor to emit, until r ends (nil)
// or fails. base carries the record's container and stream. It returns the
// number of records emitted.
func (s *stampedReader) copy(r io.Reader, c *stampedCursor, base Record, end atEnd, emit func(Record, Position) error) (int, error) {
	s.br.Reset(r)
	emitted := 0
	for {
		piece, err := s.br.ReadSlice('\n')
		if len(piece) == 0 && err == io.EOF {
			return emitted, nil
		}
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return emitted, err
		}
		ts, rest, ok := cutTimestamp(piece)
		if !ok {
			// Not a stamped message (an error the API wrote in the
			// stream): it takes the latest time, counted there.
			ts, rest = c.at, piece
			if ts.IsZero() {
				ts = time.Now().UTC()
			}
		}
		drop := c.passedBefore(ts)
		trim := int64(0)
		if !drop {
			trim, c.trim = c.trim, 0
		}
		done := int64(0) // bytes of the message read so far
		piece = rest
		for {
			last := err == nil // the newline ends this piece
			if err == bufio.ErrBufferFull {
				// A piece as long as the buffer: it is the last one
				// when a newline comes next. (Peek refills the buffer
				// the piece is in.)
				piece = bytes.Clone(piece)
				next, perr := s.br.Peek(1)
				switch {
				case perr == nil && next[0] == '\n':
					s.br.Discard(1)
					last = true
				case perr == io.EOF && end != endCut:
					err = io.EOF // handled below: the message ends here
				}
			}
			continued := false
			if err == io.EOF {
				switch end {
				case endCut:
					return emitted, io.ErrUnexpectedEOF
				case endPartial:
					last, continued = true, true
				case endLine:
					last = true
				}
			}
			value := bytes.TrimSuffix(piece, []byte("\n"))
			if last && s.stripCR {
				value = bytes.TrimSuffix(value, []byte("\r"))
			}
			if !drop {
				// Bytes of the message before trim were emitted
				// in an earlier session.
				skip := min(max(trim-done, 0), int64(len(value)))
				done += int64(len(value))
				value = value[skip:]
				if last {
					c.pass(ts)
				} else {
					c.off = done
				}
				if len(value) > 0 || last {
					rec := base
					rec.Time = ts
					rec.Value = bytes.Clone(value)
					rec.Continued = continued || !last
					if err := emit(rec, c.position()); err != nil {
						return emitted, errEmit{err}
					}
					emitted++
				}
			}
			if last {
				break
			}
			piece, err = s.br.ReadSlice('\n')
			if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
				return emitted, err
			}
			if len(piece) == 0 && err == io.EOF && end == endCut {
				return emitted, io.ErrUnexpectedEOF
			}
		}
	}
}

// cutTimestamp splits "TIMESTAMP rest" into the time and the rest.
func cutTimestamp(b []byte) (time.Time, []byte, bool) {
	// RFC 3339 with nanoseconds is at most 35 bytes (with an offset).
	i := bytes.IndexByte(b[:min(len(b), 40)], ' ')
	if i < 20 {
		return time.Time{}, b, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return time.Time{}, b, false
	}
	return ts.UTC(), b[i+1:], true
}

// asEmitError returns the error emit gave, if err is one.
func asEmitError(err error) (error, bool) {
	var e errEmit
	if errors.As(err, &e) {
		return e.err, true
	}
	return nil, false
}
