package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// AttemptsPrefix is where the attempt records are, under the run's prefix.
const AttemptsPrefix = ".collector/attempts/"

// attemptVersion is the version of AttemptRecord this build writes.
const attemptVersion = 1

// AttemptRecord is what the collector records of an attempt once it ends:
// what the rest of the store does not hold (the wrapped command's exit code,
// the collector's own failure, the node's cores). One small object per
// attempt, written after the attempt's final sync.
type AttemptRecord struct {
	Version int    `json:"version"`
	Attempt int    `json:"attempt"`
	Replica string `json:"replica,omitempty"`
	// Mode is wrapper or sidecar.
	Mode    string    `json:"mode,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// ExitCode is the wrapped command's (128+signal when a signal ended
	// it); nil in sidecar mode, where the collector does not run the job.
	ExitCode *int `json:"exit_code,omitempty"`
	// Error is why the collector itself failed, redacted; empty when its
	// work reached the store.
	Error string `json:"error,omitempty"`
	// NodeCPUs are the cores the collector's machine has.
	NodeCPUs int `json:"node_cpus,omitempty"`
	// Preemption is the cloud's termination notice, when one came during
	// the attempt.
	Preemption *Preemption `json:"preemption,omitempty"`
}

// Preemption is a cloud's termination notice (a spot or preemptible
// machine).
type Preemption struct {
	Cloud string `json:"cloud,omitempty"` // aws, gcp, azure
	// Action is what the notice announces: interruption, rebalance, or the
	// cloud's own word (terminate, stop, Preempt).
	Action string `json:"action,omitempty"`
	// Noticed is when the notice came, Deadline when the machine goes;
	// either is zero where unknown.
	Noticed  time.Time `json:"noticed,omitzero"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// at is where the notice goes on a timeline: when it came, else the
// deadline it gave.
func (p *Preemption) at() time.Time {
	if !p.Noticed.IsZero() {
		return p.Noticed
	}
	return p.Deadline
}

// AttemptKey is the record of an attempt, under the run's prefix:
// .collector/attempts/<attempt, 6 digits>.json, and with a replica
// .collector/attempts/<replica>.<attempt>.json.
func AttemptKey(replica string, attempt int) string {
	if replica == "" {
		return fmt.Sprintf("%s%06d.json", AttemptsPrefix, attempt)
	}
	return fmt.Sprintf("%s%s.%06d.json", AttemptsPrefix, replica, attempt)
}

var attemptKeyPattern = regexp.MustCompile(`^(?:([A-Za-z0-9_.-]+)\.)?([0-9]{6})\.json$`)

// parseAttemptKey reads a record's name (without the prefix) back.
func parseAttemptKey(name string) (replica string, attempt int, ok bool) {
	m := attemptKeyPattern.FindStringSubmatch(name)
	if m == nil {
		return "", 0, false
	}
	attempt, err := strconv.Atoi(m[2])
	return m[1], attempt, err == nil
}

// PutAttempt stores rec under run (rooted at <run>/), replacing an earlier
// record of the same attempt.
func PutAttempt(ctx context.Context, run *blob.Bucket, rec AttemptRecord) error {
	rec.Version = attemptVersion
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	key := AttemptKey(rec.Replica, rec.Attempt)
	if err := run.WriteAll(ctx, key, append(data, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// readAttempts reads every attempt record of the run. A record that cannot
// be read is named in notes and left out.
func readAttempts(ctx context.Context, run *blob.Bucket) (recs []AttemptRecord, notes []string, err error) {
	it := stores.List(run, &blob.ListOptions{Prefix: AttemptsPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", AttemptsPrefix, err)
		}
		if _, _, ok := parseAttemptKey(strings.TrimPrefix(obj.Key, AttemptsPrefix)); !ok {
			continue
		}
		data, err := run.ReadAll(ctx, obj.Key)
		if err != nil {
			notes = append(notes, fmt.Sprintf("attempt record %s: %v", obj.Key, err))
			continue
		}
		var rec AttemptRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			notes = append(notes, fmt.Sprintf("attempt record %s: %v", obj.Key, err))
			continue
		}
		recs = append(recs, rec)
	}
	return recs, notes, nil
}
