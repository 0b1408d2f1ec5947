package preempt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// Kind says what a notice announces.
type Kind string

const (
	// Interruption: the machine is taken back at the notice's Deadline
	// (EC2's instance-action, GCE's preempted, Azure's Preempt event).
	Interruption Kind = "interruption"
	// Rebalance: EC2 says the machine is at an elevated risk of an
	// interruption; no deadline.
	Rebalance Kind = "rebalance"
)

// Notice is one notice from the cloud.
type Notice struct {
	Cloud Cloud
	Kind  Kind
	// Deadline is when the machine goes, as the cloud says it (EC2's
	// instance-action time, Azure's NotBefore) or, for GCE, which gives
	// none, its documented 30 s after the notice; zero when unknown.
	Deadline time.Time
	// Detail is the cloud's own word: EC2's action (terminate, stop,
	// hibernate), Azure's event ID.
	Detail string
}

// Config says which cloud to watch and how.
type Config struct {
	Cloud Cloud
	// Getenv reads the SDKs' endpoint overrides; nil is os.Getenv.
	Getenv func(string) string
	// Poll is the time between two looks at a metadata service that must
	// be polled (EC2, Azure); zero is 1 s. (AWS advises 5 s at least; the
	// notice is worth more than the two local requests a second cost.)
	Poll   time.Duration
	Logger *slog.Logger
	// Detected says the cloud was found by Detect rather than named: a
	// metadata service that does not answer is then told once at INFO, not
	// WARN (a sandbox may hide it), and quietly asked again.
	Detected bool
	// Client, if set, makes the requests (tests); else a client that goes
	// straight to the metadata service, never through a proxy.
	Client *http.Client
}

// Watcher watches one cloud's metadata service for notices.
type Watcher struct {
	cloud    Cloud
	endpoint string
	poll     time.Duration
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	lastErr  string
	failing  bool
	detected bool
	told     bool // a detected cloud's failure was logged
}

// New returns a Watcher of cfg.Cloud.
func New(cfg Config) (*Watcher, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 nil, // link-local: a proxy could not reach it
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			ResponseHeaderTimeout: 0, // GCE's hanging GET is bounded by its own timeout_sec
			MaxIdleConns:          2,
			IdleConnTimeout:       time.Minute,
		}}
	}
	w := &Watcher{cloud: cfg.Cloud, poll: cfg.Poll, client: client, now: time.Now, detected: cfg.Detected,
		log: log.With("component", "preemption", "cloud", string(cfg.Cloud))}
	switch cfg.Cloud {
	case AWS:
		w.endpoint = awsEndpoint(getenv)
	case GCP:
		w.endpoint = gceEndpoint(getenv)
	case Azure:
		w.endpoint = azureEndpoint(getenv)
	default:
		return nil, fmt.Errorf("preempt: %q is not a cloud; valid: aws, gcp, azure", cfg.Cloud)
	}
	if w.poll <= 0 {
		w.poll = time.Second
	}
	return w, nil
}

// Cloud is the cloud watched.
func (w *Watcher) Cloud() Cloud { return w.cloud }

// Endpoint is the metadata service's URL, without a path.
func (w *Watcher) Endpoint() string { return w.endpoint }

// Watch looks for notices until ctx ends, calling notify once for each
// (from Watch's goroutine; notify should not block long). A metadata
// service that cannot be reached is logged, once per distinct error, and
// asked again with backoff. It returns nil when ctx ends.
func (w *Watcher) Watch(ctx context.Context, notify func(Notice)) error {
	switch w.cloud {
	case AWS:
		w.watchAWS(ctx, notify)
	case GCP:
		w.watchGCE(ctx, notify)
	case Azure:
		w.watchAzure(ctx, notify)
	}
	return nil
}

// every calls look every w.poll until ctx ends, and after a failure, with
// backoff, never more often than w.poll.
func (w *Watcher) every(ctx context.Context, look func(context.Context) error) {
	b := backoff.Backoff{Min: w.poll, Max: max(30*time.Second, w.poll)}
	for {
		err := look(ctx)
		if ctx.Err() != nil {
			return
		}
		w.outcome(err)
		delay := w.poll
		if err != nil {
			delay = b.Next()
		} else {
			b.Reset()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// outcome logs a failure to reach the metadata service once per distinct
// error, and its recovery.
func (w *Watcher) outcome(err error) {
	switch {
	case err == nil && w.failing:
		w.failing, w.lastErr = false, ""
		w.log.Info("the metadata service answers again")
	case err != nil && w.detected && !w.told:
		w.failing, w.lastErr, w.told = true, err.Error(), true
		w.log.Info("the cloud's metadata service does not answer; its preemption notice is not seen until it does", "endpoint", w.endpoint, "err", err)
	case err != nil && err.Error() != w.lastErr && !w.detected:
		w.failing, w.lastErr = true, err.Error()
		w.log.Warn("cannot read the cloud's preemption notice; asking again", "endpoint", w.endpoint, "err", err)
	case err != nil:
		w.log.Debug("cannot read the cloud's preemption notice; asking again", "err", err)
	}
}

// statusError is a metadata service's answer other than the ones expected.
type statusError struct {
	url    string
	status int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.url, e.status, http.StatusText(e.status))
}

// isStatus reports whether err is an answer with that status.
func isStatus(err error, status int) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == status
}
