package resources

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"time"

	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"
)

// Folder is the sampler's folder in the spool and under the run in the
// store; SectionName is its section of the run's state; Series names its
// chunks (spool.ChunkName); SummaryKey is the summary's name in Folder.
const (
	Folder      = "resources"
	SectionName = "resources"
	Series      = "samples"
	SummaryKey  = "summary.json"
)

// A chunk is sealed at DefaultChunkBytes (compressed, on disk) or once
// DefaultChunkAge old: a sample every interval makes a small record, and a
// chunk per sample would be an object per sample in the store. The open
// chunk is flushed at each sample, so a kill loses none of it (recover).
const (
	DefaultChunkBytes = 256 << 10
	DefaultChunkAge   = 5 * time.Minute
)

// Config configures the sampler.
type Config struct {
	Run     string
	Attempt int
	// Interval is the time between samples (> 0).
	Interval time.Duration
	// ChunkAge seals a chunk once its first sample is this old; 0 is
	// DefaultChunkAge, < 0 seals only by size and at the end.
	ChunkAge time.Duration
	// ChunkBytes seals a chunk at this size; 0 is DefaultChunkBytes.
	ChunkBytes int64
	// SummaryEvery rewrites summary.json at most this often (the sync
	// interval), as well as after each sealed chunk; <= 0: only then.
	SummaryEvery time.Duration
	// Wrapper measures the collector's descendants (the wrapped command)
	// and the collector's cgroup, which is the job's; otherwise (a sidecar)
	// every process visible but the collector, and no cgroup (the
	// sidecar's own is not the job's).
	Wrapper bool
	// CommandStarted, in wrapper mode, is closed once the command runs its
	// own program: the first sample waits for it. Until its exec, the
	// command's process is a copy of the collector, sharing its memory,
	// and a sample would count the collector's RSS as the job's.
	CommandStarted <-chan struct{}
	// ProcDir, CgroupRoot and ShmPath default to /proc, /sys/fs/cgroup and
	// /dev/shm.
	ProcDir, CgroupRoot, ShmPath string
	// NoShm leaves /dev/shm out (the shm plugin off): neither measured nor
	// warned of.
	NoShm bool
	// Cgroup, when set, is measured instead of the collector's own.
	Cgroup *CgroupPaths
	// PIDs and CgroupPath name the job (--resources-pid, --resources-cgroup):
	// these processes and their descendants, the processes and figures of
	// this cgroup (a path as /proc/<pid>/cgroup gives it, or its folder
	// under CgroupRoot). Either is measured instead of what the mode
	// implies (see openJob).
	PIDs       []int
	CgroupPath string
	// OpenNVML opens NVML; nil is OpenNVML.
	OpenNVML func() (NVML, error)
	// Container, when set, is measured through Docker's stats with the
	// Docker client (the docker plugin).
	Container string
	Docker    DockerStats
	// Pod, when set, reads the collector's pod from the Kubernetes API
	// (a sidecar): the job's containers' limits, restarts, exit codes and
	// OOM kills.
	Pod    PodAPI
	Logger *slog.Logger
}

// Store is where summary.json goes: the run's resources folder in the
// store (a stores.Target rooted at <run>/resources/).
type Store interface {
	PutBytes(ctx context.Context, key string, data []byte, sums stores.Sums) error
}

// section is what the state keeps: the chunks before Stored are in the
// store, and Aggregates counts their samples and no other.
type section struct {
	Version    int        `json:"version"`
	Stored     int        `json:"stored"`
	Aggregates Aggregates `json:"aggregates"`
}

const sectionVersion = 1

// Sampler is the resources component: it samples its sources every
// interval into chunks of the spool and keeps summary.json current.
type Sampler struct {
	cfg       Config
	log       *slog.Logger
	sources   []Source
	gpu       *GPU
	container *Container
	tree      *ProcessTree
	sp        *spool.Spool
	prod      *spool.Producer
	out       *spool.Writer
	state     spool.Section
	store     Store

	mu        stdsync.Mutex
	agg       Aggregates // every sample written, stored or not
	committed section    // what the state holds
	// chunks are the sealed chunks not yet committed, each with the
	// aggregates that count it and every chunk before it.
	chunks spool.Ledger[*Aggregates]
	next   int // the next chunk's sequence number
	latest Sample

	// chunkSamples are the samples written to the open chunk; lostSamples
	// those of chunks the spool's disk refused (not in the store; the
	// summary counts them all the same).
	chunkSamples, lostSamples int

	line     []byte
	prevTime time.Time
	failed   map[string]bool // sources whose failure was logged
}

// New builds the sampler: it opens its sources (saying once which are
// absent and why), registers its folder with the spool, and counts what an
// earlier attempt left in the spool.
func New(cfg Config, sp *spool.Spool, state spool.Section, store Store) (*Sampler, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("resources: the interval must be positive")
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	switch {
	case cfg.ChunkAge == 0:
		cfg.ChunkAge = DefaultChunkAge
	case cfg.ChunkAge < 0:
		cfg.ChunkAge = 0
	}
	if cfg.ProcDir == "" {
		cfg.ProcDir = "/proc"
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.ShmPath == "" {
		cfg.ShmPath = "/dev/shm"
	}
	if cfg.OpenNVML == nil {
		cfg.OpenNVML = OpenNVML
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sampler{
		cfg: cfg, log: log.With("component", "resources"), state: state, store: store,
	}
	s.openSources()
	// The sources read their baseline: the first sample's counters run
	// from now.
	s.prevTime = time.Now()
	if err := s.restore(); err != nil {
		s.closeSources()
		return nil, err
	}
	prod, err := sp.Producer(Folder, s.chunkStored)
	if err != nil {
		s.closeSources()
		return nil, err
	}
	s.sp, s.prod = sp, prod
	if s.out, err = prod.Writer(Series, spool.DefaultCompression, spool.SealAt{Bytes: cfg.ChunkBytes, Age: cfg.ChunkAge}); err != nil {
		s.closeSources()
		prod.Done()
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.closeSources()
		prod.Done()
		return nil, err
	}
	return s, nil
}

// openSources builds the sources that are there and logs, once, why each
// other one is not.
func (s *Sampler) openSources() {
	found, job := s.openJob()
	if lib, err := s.cfg.OpenNVML(); err != nil {
		s.log.Info(err.Error())
	} else {
		keepOutOfTree(s.tree, lib)
		var job func(int) bool
		if s.tree != nil {
			job = s.tree.isMember
		}
		if g, err := NewGPU(lib, job); err != nil {
			s.log.Info(err.Error())
		} else {
			s.gpu = g
			s.sources = append(s.sources, g)
			found = append(found, g.Describe())
			s.agg.name(g.Devices())
		}
	}
	if s.cfg.Container != "" && s.cfg.Docker != nil {
		if c, err := NewContainer(s.cfg.Docker, s.cfg.Container, s.cfg.Interval); err != nil {
			s.log.Info(err.Error())
		} else {
			s.container = c
			s.sources = append(s.sources, c)
			found = append(found, "Docker stats of container "+s.cfg.Container)
			s.agg.container().Name = s.cfg.Container
		}
	}
	found = append(found, s.openPod()...)
	if s.cfg.NoShm {
		// the shm plugin is off
	} else if sh, err := NewShm(s.cfg.ShmPath, s.log); err != nil {
		s.log.Info(err.Error())
	} else {
		s.sources = append(s.sources, sh)
		found = append(found, "shm "+s.cfg.ShmPath)
	}
	s.log.Info("sampling resources", "interval", s.cfg.Interval.Seconds(), "job", job, "sources", strings.Join(found, "; "))
}

func (s *Sampler) closeSources() {
	if s.gpu != nil {
		s.gpu.Close()
	}
	if s.container != nil {
		s.container.Close()
	}
}

// Name implements the collector's component.
func (s *Sampler) Name() string { return "resources" }

// Latest returns the last sample (for Prometheus gauges: each field is a
// gauge of its name); false before the first.
func (s *Sampler) Latest() (Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.latest
	l.Fields = append([]Field(nil), l.Fields...)
	return l, !l.Time.IsZero()
}

// Summary returns the summary of what was sampled so far.
func (s *Sampler) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agg.Summary(s.cfg.Run, false, time.Now())
}

// Run samples every interval until stop ends, then takes a last sample,
// seals the last chunk and writes the final summary before deadline.
func (s *Sampler) Run(stop, deadline context.Context) error {
	defer s.closeSources()
	defer s.prod.Done()
	summaries := make(chan []byte, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for b := range summaries {
			if err := s.putSummary(deadline, b); err != nil {
				s.log.Warn("cannot write the summary; it is written again at the next chunk", "err", err)
			}
		}
	}()
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	// A source that fails is logged (sample); a chunk that cannot be
	// written or sealed (a full disk) loses its samples from the series,
	// not from the summary, and the next sample starts a new chunk: the
	// first failure in a row is a warning, and the count is logged at the
	// end. A job is not failed for it.
	warned := false
	keepErr := func(err error) {
		switch {
		case err == nil:
			warned = false
		case !warned:
			warned = true
			s.log.Warn("cannot write the resource series to the spool (is the disk full?); its samples are left out of the series, not of summary.json, until it can", "err", err)
		}
	}
	if s.cfg.CommandStarted != nil {
		select {
		case <-s.cfg.CommandStarted:
		case <-stop.Done():
		}
	}
	keepErr(s.sample(time.Now()))
	ticker.Reset(s.cfg.Interval)
	lastSummary := time.Now()
	tick := func(now time.Time, rush bool) {
		sealed, err := s.sampleAndSeal(now, rush)
		keepErr(err)
		if sealed || (s.cfg.SummaryEvery > 0 && now.Sub(lastSummary) >= s.cfg.SummaryEvery) {
			lastSummary = now
			b := s.summaryJSON(false)
			select {
			case <-summaries:
			default:
			}
			summaries <- b
		}
	}
	// A preemption notice (the spool's Rush): a sample is taken and the
	// chunk sealed at once, not at the next tick.
	rushed := s.sp.Rushed()
	for stop.Err() == nil {
		select {
		case <-stop.Done():
		case now := <-ticker.C:
			tick(now, false)
		case <-rushed:
			rushed = nil
			tick(time.Now(), true)
		}
	}
	for _, src := range s.sources {
		if f, ok := src.(interface{ Final() }); ok {
			f.Final() // the last sample: read what is final
		}
	}
	keepErr(s.sample(time.Now()))
	keepErr(s.seal())
	close(summaries)
	<-writerDone
	if err := s.putSummary(deadline, s.summaryJSON(true)); err != nil {
		return fmt.Errorf("final summary: %w", err)
	}
	if s.lostSamples > 0 {
		s.log.Warn("samples of the resource series could not be written to the spool and are not in the store; summary.json counts them", "samples", s.lostSamples)
	}
	return nil
}

// sampleAndSeal takes a sample and seals the chunk when it is old or big
// enough, or at once with rush; it says whether it sealed one.
func (s *Sampler) sampleAndSeal(now time.Time, rush bool) (bool, error) {
	if err := s.sample(now); err != nil {
		return false, err
	}
	if !rush && !s.out.Due(now) {
		return false, nil
	}
	return true, s.seal()
}

// sample reads every source and writes one record.
func (s *Sampler) sample(now time.Time) error {
	smp := Sample{Time: now, Attempt: s.cfg.Attempt}
	if !s.prevTime.IsZero() {
		smp.Interval = now.Sub(s.prevTime)
	}
	s.prevTime = now
	for _, src := range s.sources {
		if err := src.Sample(&smp); err != nil {
			s.sourceFailed(src.Name(), err)
		}
	}
	werr := s.write(&smp)
	if werr != nil {
		// The chunk is broken: drop it, and start a new one next time.
		// The sample still counts in the summary.
		s.lostSamples++
		if s.out.IsOpen() {
			s.out.Abort()
			s.lost(s.out.Name())
			s.lostSamples += s.chunkSamples
		}
		werr = fmt.Errorf("chunk: %w", werr)
	} else {
		s.chunkSamples++
	}
	s.mu.Lock()
	s.agg.Add(&smp)
	if kills, _ := smp.Value("cgroup_oom_kills"); kills > 0 {
		limit, _ := smp.Value("cgroup_memory_limit_bytes")
		s.log.Warn("the OOM killer killed a process of the job's cgroup", "kills", kills, "limit_bytes", limit)
	}
	s.latest = smp
	s.mu.Unlock()
	return werr
}

// sourceFailed logs a source's failure: the first as a warning, the next
// ones at debug level, so a source that fails on every tick says so once.
func (s *Sampler) sourceFailed(name string, err error) {
	if s.failed == nil {
		s.failed = map[string]bool{}
	}
	if s.failed[name] {
		s.log.Debug("resource source failed again", "source", name, "err", err)
		return
	}
	s.failed[name] = true
	s.log.Warn("a resource source failed; its fields are left out of the samples while it fails (further failures at debug level)", "source", name, "err", err)
}

// write appends the sample to the open chunk, starting one if needed. Each
// record is flushed, so a chunk left open by a kill is readable up to its
// last whole record.
func (s *Sampler) write(smp *Sample) error {
	if !s.out.IsOpen() {
		s.mu.Lock()
		seq := s.next
		s.next++
		s.mu.Unlock()
		if err := s.out.Open(s.cfg.Attempt, uint64(seq), smp.Time); err != nil {
			return err
		}
		s.chunkSamples = 0
	}
	s.line = smp.appendJSON(s.line[:0])
	s.out.Append(s.line)
	return s.out.Flush()
}

// seal closes and seals the open chunk, and remembers the aggregates that
// count it, for when the store holds it.
func (s *Sampler) seal() error {
	if !s.out.IsOpen() {
		return nil
	}
	name := s.out.Name()
	_, err := s.out.Finish()
	s.mu.Lock()
	snap := s.agg.clone()
	s.chunks.Sealed(name, &snap)
	s.mu.Unlock()
	if err == nil {
		err = s.out.Seal()
	}
	if err != nil {
		s.out.Abort()
		s.lost(name)
		s.lostSamples += s.chunkSamples
		return fmt.Errorf("chunk %s: %w", name, err)
	}
	return nil
}

// lost gives up on the chunk name, which never reaches the store: the
// state moves past it when the chunks before it are stored (its samples
// stay counted in the summary), rather than waiting for it for ever.
func (s *Sampler) lost(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chunks.Drop(name); !ok {
		snap := s.agg.clone()
		s.chunks.Sealed(name, &snap)
		s.chunks.Drop(name)
	}
}

// chunkStored is the spool's report that the store holds a chunk: the
// state moves past every chunk the store holds in order.
func (s *Sampler) chunkStored(name string) error {
	if _, ok := parseChunkName(name); !ok {
		return nil // not ours
	}
	s.mu.Lock()
	if _, ok := s.chunks.Stored(name); !ok {
		s.mu.Unlock()
		return nil // committed already
	}
	moved := s.chunks.Advance(func(ch spool.Chunk[*Aggregates]) {
		s.committed.Stored = int(ch.Seq) + 1
		s.committed.Aggregates = *ch.Payload
	}) > 0
	sec := s.committed
	sec.Aggregates = sec.Aggregates.clone()
	s.mu.Unlock()
	if !moved {
		return nil
	}
	return s.state.Save(context.Background(), sec)
}

// restore loads the state section: the series and the aggregates continue.
func (s *Sampler) restore() error {
	var sec section
	ok, err := s.state.Load(&sec)
	if err != nil {
		return err
	}
	if ok && sec.Version != sectionVersion {
		return fmt.Errorf("state section %q: version %d, want %d", SectionName, sec.Version, sectionVersion)
	}
	sec.Version = sectionVersion
	s.committed = sec
	infos, container := s.agg.GPUs, s.agg.Container
	s.agg = sec.Aggregates.clone()
	for _, g := range infos {
		s.agg.name([]GPUInfo{g.GPUInfo})
	}
	if container != nil {
		s.agg.container().Name = container.Name
	}
	s.next = sec.Stored
	return nil
}

// recover seals what an earlier run on this disk left open (its whole
// records), and counts the samples of every chunk still in the spool: they
// are not in the state's aggregates yet, and will reach the store.
func (s *Sampler) recover() error {
	open, err := s.prod.OpenChunks()
	if err != nil {
		return err
	}
	for _, name := range open {
		if _, err := s.prod.SealWholeLines(name); err != nil {
			s.log.Warn("an open chunk of an earlier run cannot be read; dropping it", "chunk", name, "err", err)
			if err := s.prod.Discard(name); err != nil {
				return err
			}
		}
	}
	sealed, err := s.prod.Sealed()
	if err != nil {
		return err
	}
	for _, name := range sealed {
		seq, ok := parseChunkName(name)
		if !ok {
			continue
		}
		s.next = max(s.next, seq+1)
		if seq < s.committed.Stored {
			continue // counted: the store has it, the spool has not removed it yet
		}
		s.chunks.Sealed(name, nil)
	}
	// Each chunk's aggregates count the chunks before it, in the order the
	// state moves past them.
	for ch := range s.chunks.All() {
		samples, err := readChunk(s.prod.SealedPath(ch.Name))
		if err != nil {
			return fmt.Errorf("resources: chunk %s of an earlier run: %w", ch.Name, err)
		}
		for i := range samples {
			s.agg.Add(&samples[i])
		}
		snap := s.agg.clone()
		s.chunks.Sealed(ch.Name, &snap)
	}
	return nil
}

// readChunk reads the whole records of a chunk, which may have been cut
// short by a kill.
func readChunk(path string) ([]Sample, error) {
	data, err := spool.ReadChunk(path)
	if err != nil {
		return nil, err
	}
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		smp, err := parseSample(line)
		if err != nil {
			break // a record cut short: the end of what was written
		}
		out = append(out, smp)
	}
	return out, nil
}

// parseChunkName returns the sequence number of one of the sampler's
// chunks: the series' sequence runs on across attempts, so that the state
// counts the chunks stored in one sequence. An earlier version's chunk
// (series "") reads the same.
func parseChunkName(name string) (int, bool) {
	series, _, seq, ok := spool.ParseChunkName(name)
	return int(seq), ok && (series == Series || series == "")
}

func (s *Sampler) summaryJSON(final bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agg.Summary(s.cfg.Run, final, time.Now()).JSON()
}

func (s *Sampler) putSummary(ctx context.Context, b []byte) error {
	sha := sha256.Sum256(b)
	sum := md5.Sum(b)
	return s.store.PutBytes(ctx, SummaryKey, b, stores.Sums{SHA256: sha[:], MD5: sum[:]})
}
