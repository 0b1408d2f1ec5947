package docker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"time"
)

// The engine's media types for a log stream (API 1.42 and later say which
// one they send; older engines send raw-stream for both).
const (
	mediaMultiplexed = "application/vnd.docker.multiplexed-stream"
)

// Logs opens a container's log (GET /containers/{id}/logs) with stdout,
// stderr and timestamps=1: every message the engine sends starts with its
// RFC 3339 timestamp (nanoseconds) and a space. since, when not zero, asks
// for the messages stamped at or after it; follow keeps the stream open for
// new messages until the container stops or ctx ends. Close the reader.
func (c *Client) Logs(ctx context.Context, container string, since time.Time, follow bool) (*LogReader, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if follow {
		q.Set("follow", "1")
	}
	if !since.IsZero() {
		q.Set("since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	}
	resp, err := c.get(ctx, "logs", containerPath(container, "logs"), q)
	if err != nil {
		return nil, err
	}
	r := &LogReader{body: resp.Body}
	if resp.Header.Get("Content-Type") != mediaMultiplexed {
		// An older engine does not say: a TTY container's log is raw.
		info, err := c.Inspect(ctx, container)
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		r.tty = info.TTY
	}
	return r, nil
}

// LogReader reads a container's log as the engine sends it. Without a TTY
// the engine multiplexes stdout and stderr in frames, each an 8-byte header
// (the stream: 1 stdout, 2 stderr; then the payload's length, big-endian)
// and one log message: "TIMESTAMP TEXT", ending in a newline unless the
// engine split a long line (16 KiB by default) into partial messages, each
// with its own frame and timestamp. A TTY container's log is one raw stream
// of such messages.
type LogReader struct {
	body    io.ReadCloser
	tty     bool
	started bool
	frame   frameReader
}

// TTY tells whether the log is a TTY container's raw stream: one stream,
// "stdout", that Next returns as a single frame.
func (r *LogReader) TTY() bool { return r.tty }

// Next returns the next frame: its stream ("stdout" or "stderr") and a
// reader of its payload, valid until the next call. At the end of the log
// it returns io.EOF; a log cut in the middle of a frame makes the payload's
// reader return io.ErrUnexpectedEOF. A message the engine itself puts in
// the stream (stream 3, an error while reading the log) is returned as an
// error.
func (r *LogReader) Next() (stream string, payload io.Reader, err error) {
	if r.tty {
		if r.started {
			return "", nil, io.EOF
		}
		r.started = true
		return "stdout", r.body, nil
	}
	if _, err := io.Copy(io.Discard, &r.frame); err != nil {
		return "", nil, err
	}
	var header [8]byte
	if _, err := io.ReadFull(r.body, header[:]); err != nil {
		return "", nil, err // io.EOF between frames: the end of the log
	}
	size := int64(binary.BigEndian.Uint32(header[4:]))
	r.frame = frameReader{r: r.body, left: size}
	switch header[0] {
	case 1:
		return "stdout", &r.frame, nil
	case 2:
		return "stderr", &r.frame, nil
	case 3:
		msg, _ := io.ReadAll(io.LimitReader(&r.frame, 64<<10))
		return "", nil, fmt.Errorf("docker logs: the engine says: %s", msg)
	default:
		return "", nil, fmt.Errorf("docker logs: frame header %x names no stream", header)
	}
}

// Close ends the stream.
func (r *LogReader) Close() error { return r.body.Close() }

// frameReader reads one frame's payload: io.EOF at its end, and
// io.ErrUnexpectedEOF when the stream ends before it.
type frameReader struct {
	r    io.Reader
	left int64
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	if err == io.EOF {
		if f.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}
