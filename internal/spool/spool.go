// Package spool is the local buffer between the components that produce
// files for the store (log collection, resource sampling) and the store: a
// folder under the run's state folder where they write chunks, which reach
// the store through the sync engine that uploads the outputs (its retries,
// its memory budget, its final flush at shutdown), not through an uploader
// of their own.
//
// A producer owns one top folder of the spool ("logs", "resources"), which
// is also its folder under the run in the store (<run>/logs/). It writes a
// chunk in the spool's hidden .open/ folder, where the engine does not look,
// and seals it: the chunk is made durable and renamed into the producer's
// folder, and from then on it is immutable. The engine uploads it under the
// same name. Once the store holds it, the producer is told (so that it can
// move its cursor past what the chunk holds) and only then is the chunk
// removed from the spool. A collector killed in between finds the sealed
// chunk at start and uploads it again under the same name: the same bytes,
// no duplicate.
//
// The spool keeps no manifest in the run's state: what is in the spool is
// what the store may not have yet.
package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	stdsync "sync"

	"github.com/klauspost/compress/gzip"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/sync"
)

// openDir is where chunks are written before they are sealed.
const openDir = ".open"

// Config says where the spool is and where its chunks go.
type Config struct {
	// Dir is the spool's folder, under the run's state folder.
	Dir string
	// Target is the run's root in the store: a chunk at <Dir>/logs/x is
	// stored at <run>/logs/x.
	Target stores.Target
	// Sync is the engine's settings, as for the outputs; the spool uploads
	// a chunk as soon as it is sealed (no settle time) and never deletes
	// from the store.
	Sync sync.Config
	// Budget is the memory budget shared with the outputs sync.
	Budget *sync.Budget
	Logger *slog.Logger
}

// Spool is a run's spool. Register every producer before Run.
type Spool struct {
	dir    string
	log    *slog.Logger
	syncer *sync.Syncer

	mu        stdsync.Mutex
	producers map[string]*Producer // by folder
	open      stdsync.WaitGroup    // producers not Done yet
}

// New creates the spool's folder and the engine that empties it.
func New(cfg Config) (*Spool, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, openDir), 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: cfg.Dir, log: log.With("component", "spool"), producers: map[string]*Producer{}}
	sc := cfg.Sync
	sc.Settle = 0         // a sealed chunk is complete
	sc.KeepDeleted = true // a chunk leaves the spool once the store has it
	sc.Include = nil
	sc.Exclude = sync.Globs{openDir + "/"}
	syncer, err := sync.New(sc, cfg.Dir, cfg.Target, sync.Options{
		Logger:    log,
		Component: "spool",
		Budget:    cfg.Budget,
		Stored:    s.stored,
	})
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.syncer = syncer
	return s, nil
}

// Producer registers the component that writes the chunks of folder (one
// path segment: "logs"). stored is called with a chunk's name, relative to
// the folder, once the store holds it; the chunk is removed from the spool
// when stored returns nil, and kept (uploaded again on the next start) when
// it returns an error.
func (s *Spool) Producer(folder string, stored func(name string) error) (*Producer, error) {
	if folder == "" || folder == openDir || strings.ContainsAny(folder, `/\`) {
		return nil, fmt.Errorf("spool: %q is not a folder name", folder)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.producers[folder]; ok {
		return nil, fmt.Errorf("spool: folder %q has a producer already", folder)
	}
	for _, d := range []string{filepath.Join(s.dir, folder), filepath.Join(s.dir, openDir, folder)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	p := &Producer{s: s, folder: folder, stored: stored}
	s.producers[folder] = p
	s.open.Add(1)
	return p, nil
}

// Run uploads chunks as they are sealed until stop ends and every producer
// is Done (or deadline ends), then uploads what is left within deadline.
func (s *Spool) Run(stop, deadline context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	defer cancel()
	go func() {
		select {
		case <-stop.Done():
		case <-deadline.Done():
			cancel()
			return
		}
		done := make(chan struct{})
		go func() { s.open.Wait(); close(done) }()
		select {
		case <-done:
		case <-deadline.Done():
			s.log.Warn("a producer did not finish before the shutdown deadline; uploading what it sealed")
		}
		cancel()
	}()
	return s.syncer.Run(ctx, deadline)
}

// stored is the engine's report that the store holds rel.
func (s *Spool) stored(rel string, _ resume.Entry) {
	folder, name, ok := strings.Cut(rel, "/")
	s.mu.Lock()
	p := s.producers[folder]
	s.mu.Unlock()
	if !ok || p == nil {
		return // not a producer's: left as it is
	}
	if err := p.stored(name); err != nil {
		s.log.Warn("chunk stored, but its producer could not record it; it stays in the spool", "chunk", rel, "err", err)
		return
	}
	if err := os.Remove(filepath.Join(s.dir, filepath.FromSlash(rel))); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("cannot remove a stored chunk from the spool", "chunk", rel, "err", err)
		return
	}
	s.syncer.Forget(rel)
}

// Producer writes the chunks of one folder of the spool.
type Producer struct {
	s      *Spool
	folder string
	stored func(name string) error
	done   stdsync.Once
}

// Create starts the chunk name (a file name, no folders), empty: a chunk of
// that name left open by an earlier run is replaced.
func (p *Producer) Create(name string) (*Chunk, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name != path.Clean(name) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("spool: %q is not a chunk name", name)
	}
	f, err := os.Create(p.OpenPath(name))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Chunk{f: f, name: name, sealed: p.SealedPath(name)}, nil
}

// OpenChunks lists the chunks an earlier run left open (not sealed), by
// name. The producer decides what becomes of them: Recover seals one as it
// is, SealWholeLines seals the whole lines of one, Discard drops it.
func (p *Producer) OpenChunks() ([]string, error) {
	return list(filepath.Join(p.s.dir, openDir, p.folder))
}

// Sealed lists the producer's sealed chunks still in the spool (not yet
// known to be in the store), by name in order: they upload by themselves.
func (p *Producer) Sealed() ([]string, error) {
	return list(filepath.Join(p.s.dir, p.folder))
}

// OpenPath is the file of the open chunk name, for a producer that reads
// what an earlier run left in it.
func (p *Producer) OpenPath(name string) string {
	return filepath.Join(p.s.dir, openDir, p.folder, name)
}

// SealedPath is the file of the sealed chunk name, for a producer that
// sizes its share of the spool, or drops a chunk it gives up on (removing
// the file is enough: the engine never deletes from the store).
func (p *Producer) SealedPath(name string) string {
	return filepath.Join(p.s.dir, p.folder, name)
}

// Recover seals the open chunk name that an earlier run left, as it is.
func (p *Producer) Recover(name string) error {
	f, err := os.OpenFile(p.OpenPath(name), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return (&Chunk{f: f, name: name, sealed: p.SealedPath(name)}).Seal()
}

// SealWholeLines seals the open chunk name that an earlier run left, a
// gzip stream of lines that a kill may have cut anywhere: the chunk is
// rewritten with the whole lines it holds (what a decompressor reads up to
// the cut is a prefix of what was written), and sealed; a chunk without one
// is removed. It returns how many lines were kept. The chunk is read into
// memory: chunks are a few MiB compressed.
func (p *Producer) SealWholeLines(name string) (int, error) {
	data, err := ReadChunk(p.OpenPath(name))
	if err != nil {
		return 0, fmt.Errorf("spool: chunk %s: %w", name, err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	if len(data) == 0 {
		return 0, p.Discard(name)
	}
	c, err := p.Create(name)
	if err != nil {
		return 0, err
	}
	gz := gzip.NewWriter(c)
	if _, err := gz.Write(data); err != nil {
		c.Abort()
		return 0, fmt.Errorf("spool: %w", err)
	}
	if err := gz.Close(); err != nil {
		c.Abort()
		return 0, fmt.Errorf("spool: %w", err)
	}
	return bytes.Count(data, []byte{'\n'}), c.Seal()
}

// ReadChunk reads what a gzip chunk holds, up to where a kill may have cut
// it short (an open chunk); a chunk with nothing flushed holds nothing.
func ReadChunk(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // nothing was flushed, not even the header
		}
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return data, err
	}
	return data, nil
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

// Chunk is a chunk being written. It is invisible to the engine until Seal.
type Chunk struct {
	f      *os.File
	name   string
	sealed string
	size   int64
}

// Name is the chunk's name in its folder.
func (c *Chunk) Name() string { return c.name }

// Size is how many bytes were written to it.
func (c *Chunk) Size() int64 { return c.size }

func (c *Chunk) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	c.size += int64(n)
	return n, err
}

// Seal makes the chunk durable and hands it to the engine, which uploads it
// soon (within the settle debounce, or at the next pass where the folder
// cannot be watched). The chunk must not be written after.
func (c *Chunk) Seal() error {
	err := c.f.Sync()
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(c.f.Name(), c.sealed)
	}
	if err == nil {
		err = syncDir(filepath.Dir(c.sealed))
	}
	if err != nil {
		return fmt.Errorf("spool: seal %s: %w", c.name, err)
	}
	return nil
}

// Abort drops the chunk.
func (c *Chunk) Abort() error {
	c.f.Close()
	if err := os.Remove(c.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
