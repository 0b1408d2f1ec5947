package sync

import (
	"sync/atomic"
	"time"
)

// totals count what the Syncer did since it started (Totals).
type totals struct {
	uploadedFiles, uploadedBytes, deleted, failures, retries atomic.Int64
	pending                                                  atomic.Int64
	lastSync                                                 atomic.Int64 // Unix nanoseconds
}

// Totals are what a Syncer did since it started, for /metrics.
type Totals struct {
	UploadedFiles int64     // files uploaded
	UploadedBytes int64     // their bytes
	Deleted       int64     // objects deleted because their files were
	Failures      int64     // uploads and deletions that failed after their retries
	Retries       int64     // requests tried again after a transient failure
	Pending       int64     // files left for a later pass: unsettled, changing or failed
	LastSync      time.Time // the end of the last pass that left nothing failed; zero before
}

// Totals returns what the Syncer did since it started.
func (s *Syncer) Totals() Totals {
	t := Totals{
		UploadedFiles: s.totals.uploadedFiles.Load(),
		UploadedBytes: s.totals.uploadedBytes.Load(),
		Deleted:       s.totals.deleted.Load(),
		Failures:      s.totals.failures.Load(),
		Retries:       s.totals.retries.Load(),
		Pending:       s.totals.pending.Load(),
	}
	if ns := s.totals.lastSync.Load(); ns != 0 {
		t.LastSync = time.Unix(0, ns)
	}
	return t
}
