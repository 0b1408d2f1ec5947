package logs

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mlsidecar/collector/sync"
)

// Config holds the log collection's settings. Its flags are registered by
// RegisterFlags, so each default is written once, here.
type Config struct {
	// Sources are the --logs specs: file:GLOB, k8s:CONTAINER,
	// docker:CONTAINER (the wrapped command is a source by itself).
	Sources Specs `yaml:"logs"`
	// ChunkSize closes a chunk once it holds this many bytes (compressed).
	ChunkSize sync.ByteSize `yaml:"logs-chunk-size"`
	// ChunkAge closes a chunk once it is this old; 0 means the sync
	// interval (set by the caller).
	ChunkAge time.Duration `yaml:"logs-chunk-age"`
	// SpoolLimit caps the bytes of chunks waiting for the store.
	SpoolLimit sync.ByteSize `yaml:"logs-spool-limit"`
	// LineLimit splits longer lines into records marked as continued.
	LineLimit sync.ByteSize `yaml:"logs-line-limit"`
	// Poll is how often file sources look for new lines and files.
	Poll time.Duration `yaml:"-"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ChunkSize:  4 << 20,
		SpoolLimit: 256 << 20,
		LineLimit:  256 << 10,
		Poll:       250 * time.Millisecond,
	}
}

// RegisterFlags binds the settings to fs, with c's current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Sources, "logs", "a log source besides the wrapped command (repeatable or comma-separated): file:GLOB, k8s:CONTAINER, docker:CONTAINER")
	fs.Var(&c.ChunkSize, "logs-chunk-size", "close a log chunk once it holds this many bytes, compressed (e.g. 4MiB)")
	fs.Var((*sync.Seconds)(&c.ChunkAge), "logs-chunk-age", "close a log chunk once it is this many seconds old (default: the sync interval)")
	fs.Var(&c.SpoolLimit, "logs-spool-limit", "log chunks waiting for the store, at most (e.g. 256MiB), and as much of the wrapped command's output waiting to be made into records; when full, file and container sources wait and the wrapped command's oldest unsent lines are dropped")
	fs.Var(&c.LineLimit, "logs-line-limit", "split longer log lines into records marked as continued (e.g. 256KiB)")
}

// Validate checks the settings, naming the flag at fault.
func (c Config) Validate() error {
	switch {
	case c.ChunkSize < 1<<10:
		return fmt.Errorf("--logs-chunk-size: %s is too small; want at least 1KiB", &c.ChunkSize)
	case c.SpoolLimit < c.ChunkSize:
		return fmt.Errorf("--logs-spool-limit: %s is below --logs-chunk-size %s; want at least one chunk", &c.SpoolLimit, &c.ChunkSize)
	case c.LineLimit < 1<<10 || c.LineLimit > 64<<20:
		return fmt.Errorf("--logs-line-limit: %s is out of range; want 1KiB to 64MiB", &c.LineLimit)
	case c.ChunkAge < 0:
		return fmt.Errorf("--logs-chunk-age: %v; want a positive number of seconds (0: the sync interval)", c.ChunkAge)
	}
	for _, s := range c.Sources {
		if _, _, err := ParseSpec(s); err != nil {
			return err
		}
	}
	return nil
}

// Specs is the list of --logs sources. As a flag each value adds to it
// (comma-separated values add several).
type Specs []string

func (s *Specs) String() string { return strings.Join(*s, ",") }

// Set adds one or more comma-separated specs.
func (s *Specs) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if _, _, err := ParseSpec(p); err != nil {
				return err
			}
			*s = append(*s, p)
		}
	}
	return nil
}

// ParseSpec splits a --logs spec into its kind (file, k8s, docker) and its
// argument.
func ParseSpec(spec string) (kind, arg string, err error) {
	kind, arg, ok := strings.Cut(spec, ":")
	switch {
	case !ok || arg == "":
		return "", "", fmt.Errorf("--logs: %q is not a source; want file:GLOB, k8s:CONTAINER or docker:CONTAINER", spec)
	case kind != "file" && kind != "k8s" && kind != "docker":
		return "", "", fmt.Errorf("--logs: %q: unknown kind %q; want file:GLOB, k8s:CONTAINER or docker:CONTAINER", spec, kind)
	}
	return kind, arg, nil
}
