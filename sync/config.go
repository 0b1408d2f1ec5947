package sync

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mlsidecar/collector/stores"
)

// Config holds the sync engine's settings. Its flags are registered by
// RegisterFlags, so each default is written once, here.
type Config struct {
	// Interval between passes; <= 0 means a single pass at the end.
	Interval time.Duration `yaml:"sync-interval"`
	// Settle is how long a file must stay unmodified before it is uploaded.
	Settle time.Duration `yaml:"settle"`
	// ShutdownTimeout bounds the final sync after SIGTERM, below Kubernetes'
	// 30 s grace period. After a wrapped command's own exit, it bounds how
	// long the final sync may go on without uploading anything.
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout"`
	// RescanInterval is the time between full scans of the folder, the
	// safety net behind file system events (which say nothing on NFS or
	// FUSE); other passes sync only what the events marked. A scan that
	// would cost more than rescanShare of a core at that rate waits longer,
	// up to rescanLongest (or RescanInterval, if longer).
	RescanInterval time.Duration `yaml:"rescan-interval"`
	// RescanEvery is the deprecated form of RescanInterval: when set (> 0),
	// a full scan every RescanEvery passes, taken as RescanEvery ×
	// Interval.
	RescanEvery int `yaml:"rescan-every"`
	// Workers is the number of files uploaded at once.
	Workers int `yaml:"workers"`
	// Requests is the number of one-request jobs in flight at once: files
	// below PartSize (each one PUT) and deletions. They cost a round trip,
	// not memory, so many more go at once than Workers; their buffers still
	// come out of MemoryBudget.
	Requests int `yaml:"requests"`
	// PartSize is the smallest part of a multipart upload. A file with more
	// parts than the store takes (S3: 10,000) is sent in larger ones.
	PartSize ByteSize `yaml:"part-size"`
	// PartConcurrency is the number of parts of one file in flight at once.
	PartConcurrency int `yaml:"part-concurrency"`
	// MemoryBudget caps the bytes held in upload buffers at once.
	MemoryBudget ByteSize `yaml:"memory-budget"`
	// KeepDeleted keeps objects whose files were deleted locally.
	KeepDeleted bool `yaml:"keep-deleted"`
	// Include, when set, limits the sync to paths matching one of its globs.
	Include Globs `yaml:"include"`
	// Exclude skips paths matching one of its globs.
	Exclude Globs `yaml:"exclude"`
	// CommitMarkers are file names (commit_success.txt, latest) that say
	// their folder is complete: such a file is uploaded only after every
	// other file of its folder, and below it, is in the store (marker.go).
	CommitMarkers []string `yaml:"commit-marker"`
}

// DefaultExclude lists what is never worth uploading: version control,
// editor swap files, files being written by the temp-then-rename pattern, and
// NFS's silly-renamed files; and an ext4 volume's root-only lost+found.
var DefaultExclude = Globs{".git/", "*.swp", "*.swx", "*~", ".#*", "*.tmp", "*.partial", ".nfs*", "lost+found/"}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Interval:        10 * time.Second,
		Settle:          2 * time.Second,
		ShutdownTimeout: 25 * time.Second,
		RescanInterval:  time.Minute,
		Workers:         16,
		Requests:        64,
		PartSize:        8 << 20,
		PartConcurrency: 4,
		MemoryBudget:    64 << 20,
		Exclude:         append(Globs(nil), DefaultExclude...),
	}
}

// RegisterFlags binds the settings to fs, with c's current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*Seconds)(&c.Interval), "sync-interval", "seconds between syncs; <= 0 syncs only once, at the end")
	fs.Var((*Seconds)(&c.Settle), "settle", "seconds a file must stay unmodified before it is uploaded (the final sync takes files as they are)")
	fs.Var((*Seconds)(&c.ShutdownTimeout), "shutdown-timeout", "seconds the final sync may take after SIGTERM (after the command's own exit: may go without progress)")
	fs.Var((*Seconds)(&c.RescanInterval), "rescan-interval", "seconds between full scans of the folder, behind file system events; a scan costing more than 1% of a core at that rate waits longer, up to 5 minutes")
	fs.IntVar(&c.RescanEvery, "rescan-every", c.RescanEvery, "deprecated: use --rescan-interval; N is taken as N × --sync-interval seconds")
	fs.IntVar(&c.Workers, "workers", c.Workers, "large files (--part-size and up) uploaded at once")
	fs.IntVar(&c.Requests, "requests", c.Requests, "small files (below --part-size) and deletions in flight at once, within --memory-budget")
	fs.Var(&c.PartSize, "part-size", "smallest part of a multipart upload (e.g. 8MiB; 5MiB to 5GiB, and within the store's limits); larger files than the store's part count allows get larger parts")
	fs.IntVar(&c.PartConcurrency, "part-concurrency", c.PartConcurrency, "parts of one file uploaded at once")
	fs.Var(&c.MemoryBudget, "memory-budget", "upload buffers held at once, at most (e.g. 64MiB); the Go memory limit is this plus 32MiB unless GOMEMLIMIT is set")
	fs.BoolVar(&c.KeepDeleted, "keep-deleted", c.KeepDeleted, "keep objects in the store when their files are deleted locally")
	fs.Var(&globsFlag{dst: &c.Include}, "include", "only sync paths matching this glob (repeatable or comma-separated)")
	fs.Var(&globsFlag{dst: &c.Exclude}, "exclude", "skip paths matching this glob (repeatable or comma-separated; the first one given replaces the defaults)")
	fs.Var(&namesFlag{dst: &c.CommitMarkers}, "commit-marker", "a file of this name is uploaded only after every other file of its folder and below (repeatable or comma-separated; e.g. commit_success.txt)")
}

// Validate checks the settings, naming the flag at fault.
func (c Config) Validate() error {
	switch {
	case c.Settle < 0:
		return fmt.Errorf("--settle: %v is negative; want 0 or more seconds", c.Settle.Seconds())
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout: %v is not positive; want seconds > 0 (below the orchestrator's grace period, 30 s on Kubernetes)", c.ShutdownTimeout.Seconds())
	case c.RescanInterval <= 0:
		return fmt.Errorf("--rescan-interval: %v is not positive; want seconds > 0", c.RescanInterval.Seconds())
	case c.RescanEvery < 0:
		return fmt.Errorf("--rescan-every: %d is not a number of passes; want 1 or more (deprecated: use --rescan-interval)", c.RescanEvery)
	case c.Workers < 1 || c.Workers > 1024:
		return fmt.Errorf("--workers: %d is out of range; want 1 to 1024", c.Workers)
	case c.Requests < 1 || c.Requests > maxRequests:
		return fmt.Errorf("--requests: %d is out of range; want 1 to %d", c.Requests, maxRequests)
	case c.PartSize < minPartSize || c.PartSize > maxPartSize:
		return partSizeError(c.PartSize, "", minPartSize, maxPartSize)
	case c.PartConcurrency < 1 || c.PartConcurrency > 64:
		return fmt.Errorf("--part-concurrency: %d is out of range; want 1 to 64", c.PartConcurrency)
	case c.MemoryBudget < c.PartSize:
		return fmt.Errorf("--memory-budget: %v is below one part (--part-size %v); want at least one part", c.MemoryBudget, c.PartSize)
	}
	for _, m := range c.CommitMarkers {
		if m == "" || m == "." || m == ".." || strings.ContainsAny(m, `/\`) {
			return fmt.Errorf("--commit-marker: %q is not a file name; want a plain name without a slash, e.g. commit_success.txt", m)
		}
	}
	if err := append(append(Globs(nil), c.Include...), c.Exclude...).Validate(); err != nil {
		return fmt.Errorf("--include/--exclude: %v", err)
	}
	return nil
}

// rescanPeriod is the time between full scans that the settings ask for:
// RescanInterval, or the deprecated RescanEvery passes of Interval.
func (c Config) rescanPeriod() time.Duration {
	if c.RescanEvery > 0 && c.Interval > 0 {
		return time.Duration(c.RescanEvery) * c.Interval
	}
	return c.RescanInterval
}

// maxRequests bounds --requests; the store's HTTP clients keep as many idle
// connections as requests go at once (stores.IdleConns).
const maxRequests = 256

// The range of --part-size in every store: S3's limits on a part, which are
// the narrowest but for Azure's largest block (ValidateFor).
const (
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

// ValidateFor checks the settings against the limits of the store of the
// given kind: --part-size must be a part the store takes.
func (c Config) ValidateFor(kind string, l stores.Limits) error {
	lo, hi := max(minPartSize, ByteSize(l.MinPartSize)), ByteSize(maxPartSize)
	if l.MaxPartSize > 0 {
		hi = min(hi, ByteSize(l.MaxPartSize))
	}
	if c.PartSize < lo || c.PartSize > hi {
		return partSizeError(c.PartSize, " for a "+kind+" store", lo, hi)
	}
	if m := ByteSize(l.PartMultiple); m > 0 && c.PartSize%m != 0 {
		return fmt.Errorf("--part-size: %s is not a multiple of %s, which a %s store needs of every part but the last", c.PartSize.String(), m.String(), kind)
	}
	return nil
}

func partSizeError(v ByteSize, where string, lo, hi ByteSize) error {
	return fmt.Errorf("--part-size: %s is out of range%s; want %s to %s", v.String(), where, lo.String(), hi.String())
}
