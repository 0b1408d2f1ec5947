// Package tracking reports a run's status to a tracking API (the auth and
// externalHost plugins' server): one small JSON document POSTed to the API's
// URL when the run starts, as a heartbeat while it runs, and when it ends,
// with the wrapped command's exit code and the run's resources summary. Any
// HTTP server that accepts a JSON POST can receive it.
//
// Reporting never fails or slows the job: every request has a short
// timeout, runs beside the work, and a failure is logged (once at warning
// level, its repeats at debug) and otherwise ignored.
package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	stdsync "sync"
	"time"

	"github.com/mlsidecar/collector/stores"
)

// The statuses of a run, in the order they are sent.
const (
	Started   = "started"
	Running   = "running" // a heartbeat
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Status is the document POSTed to the API.
type Status struct {
	Run     string    `json:"run"`
	Attempt int       `json:"attempt"`
	Status  string    `json:"status"`
	Time    time.Time `json:"time"`
	// Mode is "wrapper" or "sidecar".
	Mode string `json:"mode"`
	// ExitCode is the wrapped command's exit code (128 + signal when it was
	// killed), at the end of a wrapper-mode run.
	ExitCode *int `json:"exit_code,omitempty"`
	// Message says what went wrong, at the end of a failed run.
	Message string `json:"message,omitempty"`
	// Resources is the run's resources summary (<run>/resources/summary.json)
	// at the end of the run, when there is one.
	Resources json.RawMessage `json:"resources,omitempty"`
}

// Timeout bounds one request.
const Timeout = 5 * time.Second

// Reporter POSTs statuses to one URL.
type Reporter struct {
	url    string
	token  string // sent as a bearer token when not empty
	client *http.Client
	log    *slog.Logger

	mu      stdsync.Mutex
	lastErr string // the last failure logged, to log repeats quietly
}

// New returns a Reporter that POSTs to url, with token as a bearer token
// when it is not empty.
func New(url, token string, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{url: url, token: token, client: &http.Client{Timeout: Timeout}, log: log.With("component", "tracking")}
}

// Report POSTs st, stamped with the time now if it has none. It returns the
// failure, which it has also logged.
func (r *Reporter) Report(ctx context.Context, st Status) error {
	if st.Time.IsZero() {
		st.Time = time.Now().UTC()
	}
	err := stores.Redact(r.post(ctx, st))
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && r.lastErr != "":
		r.log.Info("the tracking API answers again", "url", stores.RedactString(r.url))
		r.lastErr = ""
	case err != nil && err.Error() != r.lastErr:
		r.log.Warn("cannot report the run's status to the tracking API; the run goes on", "status", st.Status, "url", stores.RedactString(r.url), "err", err)
		r.lastErr = err.Error()
	case err != nil:
		r.log.Debug("cannot report the run's status to the tracking API", "status", st.Status, "err", err)
	}
	return err
}

func (r *Reporter) post(ctx context.Context, st Status) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the API answered %s", resp.Status)
	}
	return nil
}

// Heartbeat reports st as Running every interval until ctx ends, without
// waiting for an answer longer than Timeout.
func (r *Reporter) Heartbeat(ctx context.Context, st Status, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	st.Status = Running
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st.Time = time.Time{}
			_ = r.Report(ctx, st)
		}
	}
}
