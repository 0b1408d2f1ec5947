package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// openDir is where chunks are written before they are sealed.
const openDir = ".open"

// Uploader puts a sealed chunk into the store. The sync engine implements
// it, with its retries and the memory budget it shares with the outputs.
type Uploader interface {
	// Upload copies the file at path to key, relative to the run's folder
	// in the store (logs/x.jsonl.gz), and returns once the store holds it.
	// A file that is gone returns an error that is fs.ErrNotExist.
	Upload(ctx context.Context, path, key string) error
	// Refused reports whether an error of Upload will not go away by
	// trying again (a request the store refuses).
	Refused(err error) bool
}

// Config says where the spool is and how its chunks reach the store.
type Config struct {
	// Dir is the spool's folder, under the run's state folder.
	Dir      string
	Uploader Uploader
	// Interval is the sync interval: <= 0 uploads chunks only at the end,
	// as the outputs are.
	Interval time.Duration
	// Workers is how many chunks are uploaded at once; 0 is 4.
	Workers int
	// GiveUp ends the final upload after this long without progress (a
	// store that stays down does not hold a finished job for ever).
	GiveUp time.Duration
	Logger *slog.Logger
}

// Spool is a run's spool. Register every producer before Run.
type Spool struct {
	cfg Config
	log *slog.Logger

	mu        stdsync.Mutex
	producers map[string]*Producer // by folder
	queue     []*upload            // sealed chunks not yet stored, in the order sealed
	warned    time.Time            // when an upload error was last logged at Warn
	ending    bool                 // the final upload has begun
	wake      chan struct{}
	open      stdsync.WaitGroup // producers not Done yet
	rushAt    atomic.Int64      // Rush's time (Unix ns); 0 before
	rushDone  chan struct{}     // closed by Rush (rush.go)
}

// upload is a sealed chunk waiting for the store.
type upload struct {
	key     string          // <folder>/<name>
	busy    bool            // being uploaded
	after   time.Time       // not tried again before
	retry   backoff.Backoff // paces the tries after failures in a row
	refused int             // refusals in a row
	err     error
}

// New creates the spool's folder.
func New(cfg Config) (*Spool, error) {
	if cfg.Uploader == nil {
		return nil, errors.New("spool: no uploader")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = 25 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, openDir), 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Spool{cfg: cfg, log: log.With("component", "spool"), producers: map[string]*Producer{}, wake: make(chan struct{}, 1), rushDone: make(chan struct{})}, nil
}

// Producer registers the component that writes the chunks of folder (one
// path segment: "logs"). The chunks an earlier run sealed there are
// uploaded again. stored is called with a chunk's name, relative to the
// folder, once the store holds it; the chunk is removed from the spool
// when stored returns nil, and kept (uploaded again on the next start)
// when it returns an error.
func (s *Spool) Producer(folder string, stored func(name string) error) (*Producer, error) {
	if folder == "" || folder == openDir || strings.ContainsAny(folder, `/\`) {
		return nil, fmt.Errorf("spool: %q is not a folder name", folder)
	}
	s.mu.Lock()
	if _, ok := s.producers[folder]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: folder %q has a producer already", folder)
	}
	s.mu.Unlock()
	for _, d := range []string{filepath.Join(s.cfg.Dir, folder), filepath.Join(s.cfg.Dir, openDir, folder)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	p := &Producer{s: s, folder: folder, stored: stored}
	sealed, err := p.Sealed()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers[folder] = p
	for _, name := range sealed {
		s.queue = append(s.queue, &upload{key: folder + "/" + name})
	}
	s.open.Add(1)
	return p, nil
}

// sealed queues a chunk just sealed for the store.
func (s *Spool) sealed(key string) {
	s.mu.Lock()
	for _, u := range s.queue {
		if u.key == key && !u.busy {
			s.mu.Unlock()
			return // sealed again under its name (recovered at start)
		}
	}
	s.queue = append(s.queue, &upload{key: key})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// warnEvery spaces the warnings of uploads that fail.
const warnEvery = 30 * time.Second

// result is an upload's outcome.
type result struct {
	u   *upload
	err error
}

// Run uploads chunks as they are sealed (with an interval; else only at
// the end) until stop ends and every producer is Done, then uploads what
// is left: it returns once the store holds every chunk, or with an error
// when deadline ends first, or when GiveUp passes without a chunk stored.
func (s *Spool) Run(stop, deadline context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	defer cancel()
	defer context.AfterFunc(deadline, cancel)()
	producersDone := make(chan struct{})
	go func() { s.open.Wait(); close(producersDone) }()

	results := make(chan result, s.cfg.Workers)
	inFlight := 0
	defer func() {
		cancel()
		for ; inFlight > 0; inFlight-- {
			<-results
		}
	}()
	live := func() bool { return s.cfg.Interval > 0 || s.rushAt.Load() != 0 }
	stopped, final := stop.Done(), false
	var done <-chan struct{}
	lastProgress, uploaded := time.Now(), 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next time.Time
		if live() || final {
			for inFlight < s.cfg.Workers {
				u, wait := s.take(time.Now())
				if u == nil {
					next = wait
					break
				}
				inFlight++
				go func() {
					err := s.cfg.Uploader.Upload(ctx, filepath.Join(s.cfg.Dir, filepath.FromSlash(u.key)), u.key)
					results <- result{u, err}
				}()
			}
		}
		if final && inFlight == 0 {
			left, refused, some := s.left()
			switch {
			case left == 0:
				s.log.Info("final upload done", "chunks", uploaded)
				return nil
			case refused == left:
				// Twice refused, nothing else left: waiting out the
				// give-up time would only hold the job's end back.
				return fmt.Errorf("final upload: %d chunks cannot be uploaded, and trying again will not change that (%s)", left, some)
			case time.Since(lastProgress) >= s.cfg.GiveUp:
				return fmt.Errorf("final upload gave up after %v without progress, with %d chunks not uploaded (%s)", s.cfg.GiveUp, left, some)
			}
			if d := lastProgress.Add(s.cfg.GiveUp); next.IsZero() || d.Before(next) {
				next = d
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-stopped:
			stopped, done = nil, producersDone
		case <-done:
			done, final = nil, true
			s.mu.Lock()
			s.ending = true
			for _, u := range s.queue {
				u.after = time.Time{} // the end: everything is tried at once
			}
			s.mu.Unlock()
		case r := <-results:
			inFlight--
			if s.finish(ctx, r) {
				lastProgress = time.Now()
				uploaded++
			}
		case <-s.wake:
		case <-timer.C:
		case <-deadline.Done():
			if !final {
				s.log.Warn("a producer did not finish before the shutdown deadline; its last chunks may not be in the store")
			}
			left, _, some := s.left()
			if left == 0 {
				return nil
			}
			return fmt.Errorf("final upload ran out of time with %d chunks not uploaded (%s): %w", left, some, context.Cause(deadline))
		}
	}
}

// take returns the first chunk due for an upload and marks it busy, or,
// when none is, the time the next one is.
func (s *Spool) take(now time.Time) (*upload, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, u := range s.queue {
		if u.busy {
			continue
		}
		if !u.after.After(now) {
			u.busy = true
			return u, time.Time{}
		}
		if next.IsZero() || u.after.Before(next) {
			next = u.after
		}
	}
	return nil, next
}

// left counts the chunks not stored, those the store refused twice in a
// row, and names one with its error.
func (s *Spool) left() (n, refused int, some string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.queue {
		n++
		if u.refused >= 2 {
			refused++
		}
		if some == "" && u.err != nil {
			some = fmt.Sprintf("%s: %v", u.key, u.err)
		}
	}
	if some == "" {
		some = "no error recorded"
	}
	return n, refused, some
}

// finish takes an upload's outcome and says whether the store holds the
// chunk now.
func (s *Spool) finish(ctx context.Context, r result) bool {
	u := r.u
	switch {
	case r.err == nil:
		s.dequeue(u)
		s.mu.Lock()
		s.warned = time.Time{} // the store takes chunks: the next failure is news
		s.mu.Unlock()
		s.stored(u.key)
		return true
	case errors.Is(r.err, fs.ErrNotExist):
		s.dequeue(u) // its producer dropped it
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u.busy, u.err = false, r.err
	if s.cfg.Uploader.Refused(r.err) {
		u.refused++
	} else {
		u.refused = 0
	}
	// The sync interval, at most, between tries, as a pass of the outputs;
	// 2 s in the final upload, as the outputs' final sync.
	limit := 2 * time.Second
	if s.cfg.Interval > limit && !s.ending {
		limit = s.cfg.Interval
	}
	u.retry.Min, u.retry.Max = 200*time.Millisecond, limit
	u.after = time.Now().Add(u.retry.Next())
	if ctx.Err() != nil {
		return false // cut short by the shutdown deadline
	}
	// An outage is a warning when it starts and every warnEvery, not one
	// per chunk and try.
	level := slog.LevelDebug
	if now := time.Now(); now.Sub(s.warned) >= warnEvery {
		level, s.warned = slog.LevelWarn, now
	}
	s.log.Log(ctx, level, "cannot upload a chunk; trying again", "chunk", u.key, "err", r.err)
	return false
}

func (s *Spool) dequeue(u *upload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.queue {
		if q == u {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			break
		}
	}
}

// stored tells the chunk's producer that the store holds it, and removes
// the chunk from the spool once the producer has recorded it.
func (s *Spool) stored(key string) {
	folder, name, _ := strings.Cut(key, "/")
	s.mu.Lock()
	p := s.producers[folder]
	s.mu.Unlock()
	if p.stored != nil {
		if err := p.stored(name); err != nil {
			s.log.Warn("chunk stored, but its producer could not record it; it stays in the spool", "chunk", key, "err", err)
			return
		}
	}
	s.log.Debug("chunk stored", "chunk", key)
	if err := os.Remove(filepath.Join(s.cfg.Dir, filepath.FromSlash(key))); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("cannot remove a stored chunk from the spool", "chunk", key, "err", err)
	}
}

// Producer writes the chunks of one folder of the spool.
type Producer struct {
	s      *Spool
	folder string
	stored func(name string) error
	done   stdsync.Once
}

// OpenChunks lists the chunks an earlier run left open (not sealed), by
// name. The producer decides what becomes of them: SealWholeLines seals
// the whole lines of one, Discard drops it.
func (p *Producer) OpenChunks() ([]string, error) {
	return list(filepath.Join(p.s.cfg.Dir, openDir, p.folder))
}

// Sealed lists the producer's sealed chunks still in the spool (not yet
// known to be in the store), by name in order: they upload by themselves.
func (p *Producer) Sealed() ([]string, error) {
	return list(filepath.Join(p.s.cfg.Dir, p.folder))
}

// OpenPath is the file of the open chunk name.
func (p *Producer) OpenPath(name string) string {
	return filepath.Join(p.s.cfg.Dir, openDir, p.folder, name)
}

// SealedPath is the file of the sealed chunk name, for a producer that
// sizes its share of the spool, or drops a chunk it gives up on (removing
// the file is enough: the spool never deletes from the store).
func (p *Producer) SealedPath(name string) string {
	return filepath.Join(p.s.cfg.Dir, p.folder, name)
}

// Discard removes the open chunk name that an earlier run left.
func (p *Producer) Discard(name string) error {
	if err := os.Remove(p.OpenPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Done says the producer seals no more chunks: the spool's final upload
// waits for every producer to be done.
func (p *Producer) Done() { p.done.Do(p.s.open.Done) }

func list(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("spool: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
