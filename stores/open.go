package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Options tune Open.
type Options struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// ForWriting refuses a connection marked readOnly.
	ForWriting bool
	// Logger takes what the stores' client libraries log (the AWS SDK's
	// warnings), in the collector's format; nil discards it.
	Logger *slog.Logger
	// Requests is the most requests the caller sends to the store at once:
	// the client keeps as many idle connections (IdleConns), so that none
	// dials anew.
	Requests int
}

// UnavailableError says a store could not be reached or used: a missing bucket,
// refused credentials, an unreachable endpoint.
type UnavailableError struct {
	Store string // Describe of the connection
	Err   error
}

func (e *UnavailableError) Error() string { return "store " + e.Store + ": " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Describe names the store for logs and errors: kind, location and connection
// name, never a credential.
func Describe(c Connection) string {
	where := c.Schema.Bucket
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		where = c.Schema.MountPath
	}
	where = redactURL(where)
	if c.Name != "" && c.Name != where {
		return fmt.Sprintf("%s %s (connection %q)", c.Kind, where, c.Name)
	}
	return c.Kind + " " + where
}

// Identity names the place a connection writes to, for telling whether a
// saved state belongs to it: the kind and the bucket URL without credentials
// or query, or the absolute mount path.
func Identity(c Connection) string {
	where := c.Schema.Bucket
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		where = c.Schema.MountPath
		if abs, err := filepath.Abs(where); err == nil {
			where = abs
		}
	default:
		if u, err := url.Parse(where); err == nil {
			u.User, u.RawQuery, u.Fragment = nil, "", ""
			where = u.String()
		}
	}
	return c.Kind + " " + where
}

// Open opens the connection's store, rooted at the connection's prefix,
// through the backend registered for its kind. It checks the configuration
// but not that the bucket exists; see Store.Check. Its error is redacted
// (Redact) and is, for errors.As, a *ConfigError (a bad setting) or an
// *UnavailableError.
func Open(ctx context.Context, c Connection, opts Options) (*Store, error) {
	s, err := open(ctx, c, opts)
	return s, Redact(err)
}

func open(ctx context.Context, c Connection, opts Options) (*Store, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if opts.ForWriting && c.Schema.ReadOnly {
		return nil, ConfigErrorf(c.Setting()+".schema.readOnly", "store %s is read-only; the artifacts store must be writable (set readOnly: false or choose another connection)", Describe(c))
	}
	creds, err := loadCredentials(c, opts.Getenv)
	if err != nil {
		return nil, err
	}
	var loc BucketURL
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
	default:
		if loc, err = ParseBucketURL(c.Kind, c.Schema.Bucket); err != nil {
			return nil, ConfigErrorf(c.Setting()+".schema.bucket", "%v", err)
		}
	}
	backend := backendFor(c.Kind)
	if backend == nil {
		return nil, fmt.Errorf("store kind %q has no backend in this build", c.Kind)
	}
	var drv Driver
	if pb, ok := backend.(PooledBackend); ok {
		drv, err = pb.OpenPooled(ctx, c, loc, creds, opts.Logger, IdleConns(opts.Requests))
	} else {
		drv, err = backend.Open(ctx, c, loc, creds, opts.Logger)
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &UnavailableError{Store: Describe(c), Err: err}
	}
	prefix := ""
	if loc.Prefix != "" {
		prefix = loc.Prefix + "/"
	}
	return &Store{Conn: c, drv: drv, prefix: prefix, base: drv.Bucket()}, nil
}

// Check verifies that the bucket exists and the credentials are accepted, so a
// bad store is reported at start-up rather than at the first upload. Its
// error, an *UnavailableError, is redacted (Redact).
func (s *Store) Check(ctx context.Context) error {
	return storeError(s.drv, s.check(ctx))
}

func (s *Store) check(ctx context.Context) error {
	c, root := s.Conn, s.Bucket()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := root.IsAccessible(ctx)
	if err != nil {
		return &UnavailableError{Store: Describe(c), Err: explain(err)}
	}
	if !ok {
		what := "bucket"
		if c.Kind == KindWASB {
			what = "container"
		}
		return &UnavailableError{Store: Describe(c), Err: fmt.Errorf("the %s does not exist", what)}
	}
	// IsAccessible only asks whether the bucket exists; a listing also proves
	// the credentials may read it.
	if _, _, err := root.ListPage(ctx, blob.FirstPageToken, 1, nil); err != nil {
		return &UnavailableError{Store: Describe(c), Err: explain(err)}
	}
	return nil
}

// explain turns an SDK error into a short sentence by its gcerrors code,
// keeping the SDK's text for the details.
func explain(err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.PermissionDenied:
		return fmt.Errorf("access denied (check the credentials and their permissions): %w", err)
	case gcerrors.NotFound:
		return fmt.Errorf("not found: %w", err)
	case gcerrors.DeadlineExceeded:
		return fmt.Errorf("no answer in time (is the endpoint reachable?): %w", err)
	}
	return err
}
