package logs

import (
	"context"
	"encoding/json"
	"time"
)

// Record is one log line, or one piece of a line longer than the line limit,
// as a source read it.
type Record struct {
	// Time is the runtime's own timestamp (CRI, Docker, Kubernetes), or the
	// time the line was read.
	Time      time.Time
	Container string
	Stream    string // "stdout" or "stderr"
	Value     []byte // the line, without its newline
	// Continued is set on every piece of a split line but the last: the
	// next record of the same stream continues it.
	Continued bool
	// Dropped is set on a record the collector writes itself: the number
	// of the source's lines it dropped before this one.
	Dropped int64
}

// Source is one place log lines come from: the wrapped command, a file
// glob, a container's log through the Kubernetes API or the Docker engine.
// The component runs each source in its own goroutine and owns the cursor
// of each: the Position a source passes with a record is where the source
// would resume once that record is in the store.
type Source interface {
	// Name identifies the source in chunk names and in the state: stable
	// across restarts of the same settings, a short [a-z0-9-] word.
	Name() string
	// Run reads records from the position after the one given (nil: from
	// the beginning, or, for a source that cannot go back, from now) and
	// passes each to emit with the position after it, until ctx ends or
	// the source is exhausted (the wrapped command exited). emit blocks
	// while the spool is full (backpressure) and returns an error when the
	// component stops; Run then returns.
	//
	// A nil position says "not a place to resume from": a source that
	// reads a block of lines at a time passes its position with the last
	// record of the block only, and the chunk holding the block is not
	// closed before that record. The last record a source emits before Run
	// returns must carry a position.
	//
	// When ctx ends (the end of the run), Run reads what is left to read
	// now (a file to its end, a partial last line as a line) and returns;
	// emit still works until the shutdown deadline.
	Run(ctx context.Context, from Position, emit func(Record, Position) error) error
}

// Unpaced is implemented by a source that must never wait for the spool:
// the wrapped command, which a full spool must not slow down. When the
// spool is full, the collector drops the oldest lines of such a source that
// are not yet in the store, instead of blocking its emit, counts them, and
// writes a record saying how many.
type Unpaced interface {
	Unpaced()
}

// Position is a source's own description of where it is, saved in the
// run's state as it is: a file's fingerprint and offset, the timestamp of
// the last line a Kubernetes or Docker stream gave.
type Position = json.RawMessage
