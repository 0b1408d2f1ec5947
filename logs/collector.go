package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/spool"
)

// Folder is the collector's folder in the spool and under the run in the
// store (<run>/logs/).
const Folder = "logs"

// SectionName is the collector's section of the run's state.
const SectionName = "logs"

// Options are what the collector is given beside its settings.
type Options struct {
	// Node, Pod and Attempt are added to every record where known.
	Node, Pod string
	Attempt   int
	// Section holds the cursors across restarts.
	Section spool.Section
	// Checkpoint, when set, puts the run's state in the store (the
	// Keeper's Flush): called at most once a chunk age after a cursor
	// moved, so that a new pod resumes from recent cursors even when no
	// other component checkpoints.
	Checkpoint func(context.Context) error
	Logger     *slog.Logger
}

// Collector is the logs component: it runs its sources, writes their
// records into gzip-compressed chunks in the spool, and moves each source's
// cursor once the store holds the chunk with its lines.
type Collector struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	prod    *spool.Producer
	meta    recordMeta
	writers []*writer

	mu    stdsync.Mutex // guards state and sizes
	state sectionState
	sizes map[string]int64 // sealed chunks in the spool, not yet stored
	used  atomic.Int64     // bytes of the spool's chunks, open and sealed

	moved   atomic.Bool  // a cursor moved since the last checkpoint
	lines   atomic.Int64 // records of lines written to chunks
	dropped atomic.Int64 // lines dropped (full spool) or not collected (fell behind)

	behindMu     stdsync.Mutex
	behind       int64     // lines not collected since the last warning
	behindWarned time.Time // when that warning was logged
}

// warnFellBehind logs lines of the wrapped command that the collector could
// not take in time: one warning at most every behindWarnEvery, with the
// lines since the one before, so that a command that outruns the collector
// does not flood the log (each loss is also a record in the chunks and in
// collector_logs_dropped_lines_total).
func (c *Collector) warnFellBehind(source string, n int64) {
	c.behindMu.Lock()
	c.behind += n
	now := time.Now()
	due := now.Sub(c.behindWarned) >= behindWarnEvery
	total := c.behind
	if due {
		c.behind, c.behindWarned = 0, now
	}
	c.behindMu.Unlock()
	if due {
		c.log.Warn("lines of the wrapped command were not collected: the collector fell behind its output (they were passed through)", "source", source, "lines", total)
	} else {
		c.log.Debug("lines of the wrapped command were not collected", "source", source, "lines", n)
	}
}

// refusedPause is the pause after the spool's disk refused a chunk: 1 to
// 2 s, doubling at each failure in a row up to 30 s, with jitter.
var refusedPause = backoff.Backoff{Min: 2 * time.Second, Max: 30 * time.Second}

// behindWarnEvery spaces the warnings of warnFellBehind.
const behindWarnEvery = 10 * time.Second

// sectionState is the collector's section of the run's state.
type sectionState struct {
	Version int                     `json:"version"`
	Sources map[string]*sourceState `json:"sources"`
}

// sourceState is one source's cursor and its chunks in flight.
type sourceState struct {
	// Cursor is the source's position after the last line the store
	// holds, among chunks stored in order.
	Cursor Position `json:"cursor,omitempty"`
	// Attempt and Next number the source's next chunk.
	Attempt int    `json:"attempt"`
	Next    uint64 `json:"next"`
	// Chunks are the sealed chunks not yet behind the cursor: their end
	// positions are recorded before they are sealed, so that a chunk stored
	// after a restart still moves the cursor.
	Chunks spool.Ledger[chunkState] `json:"chunks,omitzero"`
}

// chunkState is what a sealed chunk holds, for the cursor to move past it.
type chunkState struct {
	End   Position `json:"end,omitempty"`
	Lines int64    `json:"lines"`
	// Noted is the sum of the dropped lines the chunk's own records count:
	// a dropped chunk passes them on to the next record of dropped lines.
	Noted int64 `json:"noted,omitempty"`
}

const sectionVersion = 1

// parseChunkName returns the source, attempt and sequence of a chunk's
// name (spool.ChunkName's, the source the series).
func parseChunkName(name string) (source string, attempt int, seq uint64, ok bool) {
	source, attempt, seq, ok = spool.ParseChunkName(name)
	return source, attempt, seq, ok && source != ""
}

var sourceNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// New builds the collector over sp and takes over what an earlier run of
// the same run left: chunks sealed but not known to be in the store are
// uploaded again under their names and move the cursor when stored; chunks
// left open by a kill are discarded, and their sources read those lines
// again from the end of the last sealed chunk, except those of a source
// that cannot read again (the wrapped command): their whole lines, flushed
// to the chunk every tick, are sealed and stored.
func New(cfg Config, sp *spool.Spool, sources []Source, opts Options) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ChunkAge == 0 {
		cfg.ChunkAge = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultConfig().Poll
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		cfg: cfg, opts: opts, log: log.With("component", "logs"),
		meta:  recordMeta{node: opts.Node, pod: opts.Pod, attempt: opts.Attempt},
		sizes: map[string]int64{},
	}
	seen := map[string]bool{}
	for _, s := range sources {
		name := s.Name()
		if !sourceNamePattern.MatchString(name) {
			return nil, fmt.Errorf("logs: source name %q: want 1 to 64 of a-z, 0-9, '-'", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("logs: two sources named %q; give each its own", name)
		}
		seen[name] = true
		_, unpaced := s.(Unpaced)
		c.writers = append(c.writers, &writer{c: c, src: s, name: name, unpaced: unpaced, down: refusedPause})
	}
	prod, err := sp.Producer(Folder, c.stored)
	if err != nil {
		return nil, err
	}
	c.prod = prod
	for _, w := range c.writers {
		if w.out, err = prod.Writer(w.name, spool.BestSpeed, spool.SealAt{Bytes: int64(cfg.ChunkSize), Age: cfg.ChunkAge}); err != nil {
			prod.Done()
			return nil, err
		}
	}
	if err := c.recover(); err != nil {
		prod.Done()
		return nil, err
	}
	return c, nil
}

// Name is the component's name.
func (c *Collector) Name() string { return "logs" }

// recover loads the section and reconciles it with what the spool holds.
func (c *Collector) recover() error {
	c.state = sectionState{Version: sectionVersion, Sources: map[string]*sourceState{}}
	if c.opts.Section != nil {
		if _, err := c.opts.Section.Load(&c.state); err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		if c.state.Version > sectionVersion {
			return fmt.Errorf("logs: state section version %d is newer than this collector's (%d)", c.state.Version, sectionVersion)
		}
		c.state.Version = sectionVersion
		if c.state.Sources == nil {
			c.state.Sources = map[string]*sourceState{}
		}
	}
	open, err := c.prod.OpenChunks()
	if err != nil {
		return err
	}
	unpaced := map[string]bool{}
	for _, w := range c.writers {
		unpaced[w.name] = w.unpaced
	}
	discarded := 0
	for _, name := range open {
		// The wrapped command's lines cannot be read again: what its open
		// chunk holds (flushed every tick) is sealed and stored. Every
		// other source reads its lines again from its cursor.
		if src, _, _, ok := parseChunkName(name); ok && unpaced[src] {
			n, err := c.prod.SealWholeLines(name)
			if err == nil {
				if n > 0 {
					c.log.Info("sealed the lines a killed collector left in an open chunk", "source", src, "chunk", name, "lines", n)
				}
				continue
			}
			c.log.Warn("an open chunk of an earlier run cannot be read; dropping it", "chunk", name, "err", err)
		}
		if err := c.prod.Discard(name); err != nil {
			return err
		}
		discarded++
	}
	if discarded > 0 {
		c.log.Info("discarded chunks a killed collector left open; their sources read those lines again", "chunks", discarded)
	}
	sealed, err := c.prod.Sealed()
	if err != nil {
		return err
	}
	inSpool := map[string]bool{}
	for _, name := range sealed {
		inSpool[name] = true
		if fi, err := os.Stat(c.prod.SealedPath(name)); err == nil {
			c.sizes[name] = fi.Size()
			c.used.Add(fi.Size())
		}
	}
	for src, ss := range c.state.Sources {
		for ch := range ss.Chunks.All() {
			if ch.Stored || ch.Dropped || inSpool[ch.Name] {
				continue
			}
			// Not in the spool and not stored: it was never sealed (a kill
			// between recording and sealing it), or the spool was lost (a
			// new pod). Its lines, and those of every later chunk, are read
			// again from the cursor.
			c.log.Warn("a chunk recorded in the state is not in the spool; its source reads its lines again", "source", src, "chunk", ch.Name)
			for _, name := range ss.Chunks.Forget(ch.Name) {
				if inSpool[name] {
					_ = os.Remove(c.prod.SealedPath(name))
					c.used.Add(-c.sizes[name])
					delete(c.sizes, name)
				}
			}
			break
		}
		c.advance(ss)
	}
	for _, w := range c.writers {
		ss := c.source(w.name)
		if ss.Attempt != c.opts.Attempt {
			ss.Attempt, ss.Next = c.opts.Attempt, 1
		}
		for _, name := range sealed {
			if s, a, seq, ok := parseChunkName(name); ok && s == w.name && a == ss.Attempt && seq >= ss.Next {
				ss.Next = seq + 1
			}
		}
		if ss.Next == 0 {
			ss.Next = 1
		}
		w.from = ss.Cursor
		if last, ok := ss.Chunks.Last(); ok && last.Payload.End != nil {
			w.from = last.Payload.End
		}
	}
	return nil
}

func (c *Collector) source(name string) *sourceState {
	ss := c.state.Sources[name]
	if ss == nil {
		ss = &sourceState{}
		c.state.Sources[name] = ss
	}
	return ss
}

// advance moves the cursor past the chunks stored (or dropped) in order.
func (c *Collector) advance(ss *sourceState) {
	ss.Chunks.Advance(func(ch spool.Chunk[chunkState]) {
		if ch.Payload.End != nil {
			ss.Cursor = ch.Payload.End
		}
	})
}

// save records the section; c.mu is held.
func (c *Collector) save() error {
	if c.opts.Section == nil {
		return nil
	}
	return c.opts.Section.Save(context.Background(), &c.state)
}

// stored is the spool's report that the store holds the chunk name.
func (c *Collector) stored(name string) error {
	src, _, _, ok := parseChunkName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if size, ok := c.sizes[name]; ok {
		c.used.Add(-size)
		delete(c.sizes, name)
	}
	ss := c.state.Sources[src]
	if !ok || ss == nil {
		return nil // a chunk the state does not know (its record was lost): it is in the store, all the same
	}
	ch, known := ss.Chunks.Stored(name)
	if !known {
		return nil
	}
	if ch.Dropped {
		c.log.Warn("a chunk dropped while the spool was full reached the store after all", "chunk", name, "lines", ch.Payload.Lines)
	}
	c.advance(ss)
	c.moved.Store(true)
	return c.save()
}

// Run runs the sources until stop ends, and each has read what it had to
// read; then it seals the last chunks and tells the spool it is done. emit
// fails once deadline ends, which stops the sources that are still busy.
func (c *Collector) Run(stop, deadline context.Context) error {
	defer c.prod.Done()
	srcCtx, cancel := context.WithCancel(stop)
	defer cancel()
	context.AfterFunc(deadline, cancel)

	tickDone := make(chan struct{})
	tickStopped := make(chan struct{})
	go func() {
		defer close(tickStopped)
		c.sealByAge(tickDone)
	}()

	errs := make([]error, len(c.writers))
	var wg stdsync.WaitGroup
	for i, w := range c.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			emit := func(r Record, pos Position) error { return w.emit(deadline, r, pos) }
			w.mu.Lock()
			from := w.from
			w.sealedPos = from
			w.mu.Unlock()
			for {
				err := w.src.Run(srcCtx, from, emit)
				if errors.Is(err, errRewind) {
					// Its open chunk was lost: again from the last one sealed.
					w.mu.Lock()
					from, w.rewind = w.sealedPos, false
					w.mu.Unlock()
					continue
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					errs[i] = fmt.Errorf("source %s: %w", w.name, err)
				}
				return
			}
		}()
	}
	wg.Wait()
	close(tickDone)
	<-tickStopped
	for _, w := range c.writers {
		w.mu.Lock()
		if w.dropped > 0 && w.failed == nil {
			if !w.out.IsOpen() {
				if err := w.open(); err != nil {
					_ = w.lost(err) // the drops stay counted and logged
				}
			}
			if w.out.IsOpen() {
				if err := w.noteDropped(w.container); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := w.seal(); errors.Is(err, errRewind) {
			errs = append(errs, fmt.Errorf("logs: source %s: its last chunk could not be written to the spool (is the disk full?); the next start reads those lines again", w.name))
		} else if err != nil {
			errs = append(errs, err)
		}
		w.mu.Unlock()
	}
	if deadline.Err() != nil {
		errs = append(errs, fmt.Errorf("sources stopped at the shutdown deadline: %w", context.Cause(deadline)))
	}
	return errors.Join(errs...)
}

// sealByAge seals each chunk once it is ChunkAge old, at its next place to
// resume from, until done is closed.
func (c *Collector) sealByAge(done <-chan struct{}) {
	every := min(max(c.cfg.ChunkAge/10, 20*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	lastCheckpoint := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			if c.opts.Checkpoint != nil && now.Sub(lastCheckpoint) >= c.cfg.ChunkAge && c.moved.Swap(false) {
				lastCheckpoint = now
				ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ChunkAge)
				if err := c.opts.Checkpoint(ctx); err != nil {
					c.moved.Store(true)
					c.log.Debug("cannot checkpoint the log cursors; tried again later", "err", err)
				}
				cancel()
			}
			for _, w := range c.writers {
				w.mu.Lock()
				// A chunk lost to a full disk is logged by lost.
				if w.resumable && w.out.Due(now) {
					if err := w.seal(); err != nil && !errors.Is(err, errRewind) {
						c.log.Error("cannot seal a log chunk", "source", w.name, "err", err)
					}
				} else if w.out.IsOpen() && w.unflushed {
					if err := w.flush(); err != nil && !errors.Is(err, errRewind) {
						c.log.Error("cannot write a log chunk", "source", w.name, "err", err)
					}
				}
				w.mu.Unlock()
			}
		}
	}
}

// writer is one source's open chunk.
type writer struct {
	c       *Collector
	src     Source
	name    string
	unpaced bool
	from    Position // where the source resumes

	mu        stdsync.Mutex
	out       *spool.Writer // the source's series
	rec       []byte        // the record being written
	stamps    stampCache
	lines     int64
	noted     int64 // dropped lines counted by records of the open chunk
	counted   int64 // of the chunk's size, what c.used holds
	lastPos   Position
	resumable bool   // the last record carried a position
	unflushed bool   // an unpaced source's records since the last flush
	container string // the last record's, for a record of dropped lines
	dropped   int64  // lines dropped and not yet reported
	failed    error

	// sealedPos is where the source resumes if its open chunk is lost: the
	// end of its last sealed chunk, or where it started.
	sealedPos Position
	// After a write to the spool failed (a full disk), writing is tried
	// again from downUntil on; until then the wrapped command's lines are
	// dropped and counted, and a paced source waits. down paces the
	// failures in a row; downUntil is zero once a chunk is sealed.
	downUntil time.Time
	down      backoff.Backoff
	rewind    bool // a paced source's chunk was lost: its next emit gets errRewind
}

// errRewind tells a paced source's Run to end: its open chunk was lost (the
// spool's disk refused it), and the source is run again from the end of its
// last sealed chunk, so that those lines are read again, not lost.
var errRewind = errors.New("logs: the open chunk was lost; reading again from the last sealed chunk")

// emit writes one record of the source.
func (w *writer) emit(deadline context.Context, r Record, pos Position) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return w.failed
	}
	if err := deadline.Err(); err != nil {
		return fmt.Errorf("logs: %w", context.Cause(deadline))
	}
	c := w.c
	if w.rewind {
		return errRewind // the chunk was lost while the source was not emitting
	}
	for time.Now().Before(w.downUntil) {
		if w.unpaced {
			// Never block the command: the line is counted, and a record
			// says how many once the spool takes chunks again.
			w.drop(r)
			return nil
		}
		w.mu.Unlock()
		select {
		case <-deadline.Done():
			w.mu.Lock()
			return fmt.Errorf("logs: the spool's disk refused writes until the shutdown deadline: %w", context.Cause(deadline))
		case <-time.After(time.Until(w.downUntil)):
		}
		w.mu.Lock()
	}
	for c.used.Load() >= int64(c.cfg.SpoolLimit) {
		if w.unpaced {
			if c.dropOldest(w) {
				continue
			}
			// Nothing of this source's left to drop but its open chunk,
			// which holds newer lines: the spool goes over its limit by
			// this chunk, at most.
			break
		}
		if w.resumable && w.out.IsOpen() {
			if err := w.seal(); err != nil {
				return err
			}
			continue
		}
		// Backpressure: wait for the store to take chunks.
		w.mu.Unlock()
		select {
		case <-deadline.Done():
			w.mu.Lock()
			return fmt.Errorf("logs: spool full at the shutdown deadline: %w", context.Cause(deadline))
		case <-time.After(50 * time.Millisecond):
		}
		w.mu.Lock()
	}
	if !w.out.IsOpen() {
		if err := w.open(); err != nil {
			if err := w.lost(err); err != nil {
				return err
			}
			w.drop(r) // this line too
			return nil
		}
	}
	if w.dropped > 0 {
		if err := w.noteDropped(r.Container); err != nil {
			return err
		}
	}
	if r.Dropped > 0 {
		c.warnFellBehind(w.name, r.Dropped)
	}
	w.rec = appendChunkLine(w.rec[:0], &r, &c.meta, &w.stamps)
	batch := w.out.Append(w.rec)
	if r.Dropped > 0 {
		w.noted += r.Dropped
		c.dropped.Add(r.Dropped)
	} else {
		w.lines++
		c.lines.Add(1)
	}
	w.container = r.Container
	w.unflushed = w.unpaced
	w.resumable = pos != nil
	if pos != nil {
		w.lastPos = pos
	}
	if !batch {
		return nil
	}
	if err := w.compress(); err != nil || !w.out.IsOpen() {
		return err // nil: the chunk was lost, its lines counted
	}
	if w.resumable && w.out.Due(time.Now()) {
		if err := w.seal(); err != nil {
			return err
		}
	}
	return nil
}

// compress writes the records not yet compressed to the chunk; w.mu is
// held and a chunk is open.
func (w *writer) compress() error {
	if err := w.out.Compress(); err != nil {
		return w.lost(err)
	}
	w.countSize()
	return nil
}

// countSize brings the spool's use up to the open chunk's size; w.mu is
// held and a chunk is open.
func (w *writer) countSize() {
	size := w.out.Size()
	w.c.used.Add(size - w.counted)
	w.counted = size
}

// flush writes every record of the open chunk through to its file, so that
// a killed collector leaves them there; w.mu is held and a chunk is open.
// Only an unpaced source's chunk is flushed, at most every tick: a source
// that can read again reads what a kill lost from its cursor.
func (w *writer) flush() error {
	if err := w.compress(); err != nil || !w.out.IsOpen() {
		return err
	}
	if err := w.out.Flush(); err != nil {
		return w.lost(err)
	}
	w.unflushed = false
	w.countSize()
	return nil
}

// noteDropped writes a record of the lines dropped from the full spool;
// w.mu is held and a chunk is open.
func (w *writer) noteDropped(container string) error {
	note := Record{Time: time.Now(), Container: container, Stream: "stderr", Dropped: w.dropped,
		Value: []byte(fmt.Sprintf("collector: %d earlier lines of this output were dropped: the spool was full (the store did not take the logs in time)", w.dropped))}
	w.rec = appendChunkLine(w.rec[:0], &note, &w.c.meta, &w.stamps)
	w.out.Append(w.rec)
	w.c.log.Warn("dropped the oldest unsent lines of the wrapped command: the spool was full", "source", w.name, "lines", w.dropped)
	w.noted += w.dropped
	w.dropped = 0
	return nil
}

func (w *writer) fail(err error) error {
	w.failed = fmt.Errorf("logs: chunk of %s: %w", w.name, err)
	return w.failed
}

// drop counts the record's line (or the lines a record of dropped lines
// counts) as dropped, for the next record of dropped lines; w.mu is held.
func (w *writer) drop(r Record) {
	n := max(r.Dropped, 1)
	w.dropped += n
	w.c.dropped.Add(n)
}

// lost drops the open chunk after a write to it failed (a full disk, most
// likely): its file is removed, which frees the space it held, and writing
// is tried again after a pause. The wrapped command's lines in it are
// counted as dropped (it cannot be read again), and a record says how many
// once a chunk can be written; a paced source gets errRewind and reads them
// again from the end of its last sealed chunk. w.mu is held.
func (w *writer) lost(err error) error { return w.lostChunk(err, w.out.IsOpen()) }

// lostChunk is lost, held saying whether a chunk was being written (open,
// or failing its seal).
func (w *writer) lostChunk(err error, held bool) error {
	c := w.c
	lines := w.lines
	if held {
		_ = w.out.Abort()
		c.used.Add(-w.counted)
	} else {
		lines = 0
	}
	w.counted, w.lines, w.unflushed = 0, 0, false
	lvl := slog.LevelWarn
	if !w.downUntil.IsZero() {
		lvl = slog.LevelDebug // warned at the first failure in a row
	}
	downFor := w.down.Next()
	w.downUntil = time.Now().Add(downFor)
	if !w.unpaced {
		c.log.Log(context.Background(), lvl, "cannot write log chunks to the spool (is the disk full?); reading this source again from its last stored chunk once it can",
			"source", w.name, "retry_in", downFor, "err", err)
		w.rewind = true
		return errRewind
	}
	// The notes of earlier drops in the chunk went with it: counted again.
	w.dropped += lines + w.noted
	c.dropped.Add(lines)
	w.noted = 0
	c.log.Log(context.Background(), lvl, "cannot write log chunks to the spool (is the disk full?); the wrapped command's lines are dropped and counted until it can",
		"source", w.name, "lines", lines, "retry_in", downFor, "err", err)
	return nil
}

// open starts the source's next chunk; w.mu is held.
func (w *writer) open() error {
	c := w.c
	c.mu.Lock()
	ss := c.source(w.name)
	attempt, seq := ss.Attempt, ss.Next
	ss.Next++
	c.mu.Unlock()
	if err := w.out.Open(attempt, seq, time.Now()); err != nil {
		return err
	}
	w.lines, w.noted, w.counted = 0, 0, 0
	return nil
}

// seal closes the open chunk, records its end position in the section,
// and hands it to the spool; w.mu is held.
func (w *writer) seal() error {
	if !w.out.IsOpen() {
		return nil
	}
	c := w.c
	name := w.out.Name()
	if err := w.compress(); err != nil || !w.out.IsOpen() {
		return err
	}
	size, err := w.out.Finish()
	if err != nil {
		return w.lost(err)
	}
	c.mu.Lock()
	ss := c.source(w.name)
	ss.Chunks.Sealed(name, chunkState{End: w.lastPos, Lines: w.lines, Noted: w.noted})
	if seq := nextSeq(name); seq > ss.Next {
		ss.Next = seq
	}
	err = c.save()
	c.used.Add(size - w.counted)
	c.sizes[name] = size
	c.mu.Unlock()
	if err != nil {
		return w.fail(err)
	}
	if err := w.out.Seal(); err != nil {
		if _, serr := os.Stat(c.prod.SealedPath(name)); serr != nil {
			// Left out of the spool: its record goes, and its lines are
			// dropped (the command's) or read again (a paced source's).
			c.mu.Lock()
			delete(c.sizes, name)
			c.source(w.name).Chunks.Forget(name)
			_ = c.save()
			c.mu.Unlock()
			w.counted = size // what lostChunk takes off the spool's use
			return w.lostChunk(err, true)
		}
		// In the spool all the same (only its folder's fsync failed).
		c.log.Warn("a log chunk is in the spool, but its folder could not be synced", "chunk", name, "err", err)
	}
	w.sealedPos = w.lastPos
	w.down.Reset()
	w.downUntil = time.Time{}
	return nil
}

func nextSeq(name string) uint64 {
	_, _, seq, _ := parseChunkName(name)
	return seq + 1
}

// dropOldest drops the source's oldest chunk in the spool that the store
// does not hold yet, and reports whether there was one; w.mu is held.
func (c *Collector) dropOldest(w *writer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.source(w.name)
	for ch := range ss.Chunks.All() {
		size, inSpool := c.sizes[ch.Name]
		if ch.Stored || ch.Dropped || !inSpool {
			continue
		}
		if err := os.Remove(c.prod.SealedPath(ch.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Error("cannot drop a chunk from the full spool", "chunk", ch.Name, "err", err)
			return false
		}
		ss.Chunks.Drop(ch.Name)
		w.dropped += ch.Payload.Lines + ch.Payload.Noted
		c.dropped.Add(ch.Payload.Lines)
		c.used.Add(-size)
		delete(c.sizes, ch.Name)
		c.advance(ss)
		if err := c.save(); err != nil {
			c.log.Error("cannot record a dropped chunk", "chunk", ch.Name, "err", err)
		}
		return true
	}
	return false
}

// Spooled is how many bytes of chunks the collector has in the spool.
func (c *Collector) Spooled() int64 { return c.used.Load() }

// Totals are the collector's counts since it started: records of lines
// written to chunks, and lines dropped (the wrapped command's oldest
// unsent lines when the spool was full, or lines it could not take in
// time).
func (c *Collector) Totals() (lines, dropped int64) { return c.lines.Load(), c.dropped.Load() }
