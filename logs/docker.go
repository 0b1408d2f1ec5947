package logs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/internal/docker"
)

// dockerName is what the engine accepts as a container's name or ID.
var dockerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// NewDockerSource returns the source of a container's log read from the
// Docker engine listening on socketPath ("" is /var/run/docker.sock): the
// engine's own timestamps, stdout and stderr as the engine tells them
// apart (a TTY container's log is all stdout). The container is named by
// its name or ID, or by its compose service (docker.Client.Find). It
// follows the log, reconnects with backoff when the stream ends while the
// container runs, and ends once the container has exited (or has been
// removed) and its log is read to the end. A container that had already
// exited when the source started is an earlier start's (compose starting
// it again for a resumed run): its log is read to the end, and the source
// waits for it to start again. A position resumes with since and drops the
// lines already passed. The socket must exist; the engine is reached only
// when the source runs.
func NewDockerSource(container, socketPath string) (Source, error) {
	spec := "docker:" + container
	if !dockerName.MatchString(container) {
		return nil, fmt.Errorf("--logs: %q: a container's name or ID, or a compose service: letters, digits, '_', '.' and '-', starting with a letter or digit", spec)
	}
	client := docker.New(socketPath)
	fi, err := os.Stat(client.Socket())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--logs: %q: no Docker socket at %s (mount the engine's socket into the collector's container)", spec, client.Socket())
	case err != nil:
		return nil, fmt.Errorf("--logs: %q: Docker socket: %v", spec, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("--logs: %q: %s is not a socket (want the Docker engine's unix socket)", spec, client.Socket())
	}
	return &dockerSource{
		container: container,
		client:    client,
		retry:     backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		notFound:  2 * time.Minute,
		drainFor:  5 * time.Second,
	}, nil
}

type dockerSource struct {
	container string
	client    *docker.Client
	retry     backoff.Backoff
	// notFound is how long the source waits for a container the engine
	// does not know (compose may create it after the collector).
	notFound time.Duration
	// drainFor bounds the last read at the end of the run.
	drainFor time.Duration

	// id is the container's ID once found: a container's ID names it
	// for good, and one the engine then no longer knows was removed.
	id string
}

func (s *dockerSource) Name() string { return sourceName("docker", s.container) }

// Run follows the container's log from the position after from. When ctx
// ends, it reads what the engine has now and returns.
func (s *dockerSource) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	p, err := parseStampedPosition(from)
	if err != nil {
		return fmt.Errorf("docker:%s: %w", s.container, err)
	}
	cur := newStampedCursor(p)
	reader := newStampedReader(false)
	started := time.Now()
	var missingSince time.Time
	var readEarlier string // the FinishedAt of an earlier start whose log was read
	for {
		if ctx.Err() != nil {
			return s.drain(ctx, cur, reader, emit)
		}
		info, err := s.find(ctx)
		switch {
		case ctx.Err() != nil:
			continue
		case errors.Is(err, docker.ErrNotFound) && s.id != "":
			return nil // removed: its log ended with it
		case errors.Is(err, docker.ErrNotFound):
			if missingSince.IsZero() {
				missingSince = time.Now()
			}
			if time.Since(missingSince) > s.notFound {
				return fmt.Errorf("docker:%s: the engine has no such container or compose service (waited %v)", s.container, s.notFound)
			}
			s.retry.Wait(ctx)
			continue
		case errors.Is(err, syscall.EACCES):
			return fmt.Errorf("docker:%s: %w (the collector's user may not use the Docker socket)", s.container, err)
		case errors.Is(err, docker.ErrAmbiguous):
			return fmt.Errorf("docker:%s: %w", s.container, err)
		case err != nil:
			s.retry.Wait(ctx) // the engine restarting: try again
			continue
		}
		missingSince = time.Time{}
		s.id = info.ID
		if info.State.Gone() {
			return nil // being removed, or dead: the engine gives no more of its log
		}
		if info.State.Status == "created" {
			s.retry.Wait(ctx) // not started yet
			continue
		}
		exited := info.State.Exited()
		earlier := exited && info.State.FinishedAt.Before(started)
		if earlier && readEarlier == info.State.FinishedAt.String() {
			s.retry.Wait(ctx) // read; waiting for the next start
			continue
		}
		n, err := s.session(ctx, cur, reader, !exited, emit)
		if err, ok := asEmitError(err); ok {
			return err
		}
		if gone(err) {
			return nil
		}
		var refused *docker.Error
		if errors.As(err, &refused) && (refused.Status/100 == 4 && refused.Status != 404 || refused.Status == 501) {
			// Asking again will not help: a log driver that cannot be
			// read (none, syslog, ...), a request the engine refuses.
			return fmt.Errorf("docker:%s: %w", s.container, err)
		}
		if earlier && err == nil {
			readEarlier = info.State.FinishedAt.String()
			s.retry.Reset()
		} else if exited && err == nil {
			return nil // read to the end after the container stopped
		}
		if n > 0 {
			s.retry.Reset()
		}
		if ctx.Err() == nil {
			s.retry.Wait(ctx)
		}
	}
}

// find inspects the container: by its ID once found, else by the name
// given (a container's or a compose service's).
func (s *dockerSource) find(ctx context.Context) (docker.Container, error) {
	if s.id != "" {
		return s.client.Inspect(ctx, s.id)
	}
	return s.client.Find(ctx, s.container)
}

// gone tells whether the engine refused a log because the container is
// removed or being removed (409 Conflict: "dead or marked for removal"):
// the end of its log, not a failure.
func gone(err error) bool {
	var refused *docker.Error
	return errors.As(err, &refused) && (refused.Status == 404 || refused.Status == 409)
}

// drain reads what the engine has now, at the end of the run.
func (s *dockerSource) drain(ctx context.Context, cur *stampedCursor, reader *stampedReader, emit func(Record, Position) error) error {
	if s.id == "" {
		return nil // never found: nothing to read
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drainFor)
	defer cancel()
	_, err := s.session(dctx, cur, reader, false, emit)
	if err, ok := asEmitError(err); ok {
		return err
	}
	if err != nil && !gone(err) {
		return fmt.Errorf("docker:%s: last read at the end of the run: %w", s.container, err)
	}
	return nil
}

// session reads the log from the cursor once, following it or not.
func (s *dockerSource) session(ctx context.Context, cur *stampedCursor, reader *stampedReader, follow bool, emit func(Record, Position) error) (int, error) {
	r, err := s.client.Logs(ctx, s.id, cur.since(), follow)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cur.session()
	base := Record{Container: s.container}
	total := 0
	for {
		stream, frame, err := r.Next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		base.Stream = stream
		// A frame is one message: without its newline, a piece of a line.
		// A TTY's raw stream ends mid-line when the connection is cut, or
		// with the container's last bytes when the log is read to its end.
		end := endPartial
		if r.TTY() {
			end = endCut
			if !follow {
				end = endLine
			}
		}
		reader.stripCR = r.TTY()
		n, err := reader.copy(frame, cur, base, end, emit)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// sourceName makes a Source name ([a-z0-9-], at most 64 bytes) of a kind
// and a container's name: the name itself when it fits, else its fitting
// part and a hash of the whole, so that two containers never share one.
func sourceName(kind, container string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, container)
	full := kind + "-" + name
	if name == container && len(full) <= 64 {
		return full
	}
	h := fnv.New32a()
	h.Write([]byte(container))
	return fmt.Sprintf("%.55s-%08x", full, h.Sum32())
}
