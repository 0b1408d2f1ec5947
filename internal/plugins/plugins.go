package plugins

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Plugins is Polyaxon's V1Plugins. A nil pointer field was not given.
type Plugins struct {
	Auth                *bool    `yaml:"auth"`
	Docker              *bool    `yaml:"docker"`
	Shm                 *bool    `yaml:"shm"`
	MountArtifactsStore *bool    `yaml:"mountArtifactsStore"`
	CollectArtifacts    *bool    `yaml:"collectArtifacts"`
	CollectLogs         *bool    `yaml:"collectLogs"`
	CollectResources    *bool    `yaml:"collectResources"`
	AutoResume          *bool    `yaml:"autoResume"`
	ExternalHost        *bool    `yaml:"externalHost"`
	LogLevel            string   `yaml:"logLevel"`
	Sidecar             *Sidecar `yaml:"sidecar"`
}

// Sidecar is Polyaxon's V1PolyaxonSidecarContainer; the collector uses
// SyncInterval and accepts the rest.
type Sidecar struct {
	Image           string         `yaml:"image"`
	ImageTag        string         `yaml:"imageTag"`
	ImagePullPolicy string         `yaml:"imagePullPolicy"`
	SleepInterval   *float64       `yaml:"sleepInterval"`
	SyncInterval    *float64       `yaml:"syncInterval"`
	MonitorLogs     *bool          `yaml:"monitorLogs"`
	Resources       map[string]any `yaml:"resources"`
}

// Defaults of the seed: every collection on, auto-resume on.
func on(b *bool) bool { return b == nil || *b }

// CollectArtifactsOn tells whether outputs are synced (default true).
func (p *Plugins) CollectArtifactsOn() bool { return p == nil || on(p.CollectArtifacts) }

// CollectLogsOn tells whether logs are collected (default true).
func (p *Plugins) CollectLogsOn() bool { return p == nil || on(p.CollectLogs) }

// CollectResourcesOn tells whether resources are sampled (default true).
func (p *Plugins) CollectResourcesOn() bool { return p == nil || on(p.CollectResources) }

// AutoResumeOn tells whether a run's outputs are restored at start (default true).
func (p *Plugins) AutoResumeOn() bool { return p == nil || on(p.AutoResume) }

// DockerOn tells whether the Docker engine's socket may be used, for the
// docker: log source and Docker stats (default false: it is never opened).
func (p *Plugins) DockerOn() bool { return p != nil && p.Docker != nil && *p.Docker }

// ShmOn tells whether /dev/shm is measured and its exhaustion warned of
// (default true).
func (p *Plugins) ShmOn() bool { return p == nil || on(p.Shm) }

// MountArtifactsStoreOn tells whether the wrapped command is given the path
// of a mounted store (host_path, volume_claim) (default false).
func (p *Plugins) MountArtifactsStoreOn() bool {
	return p != nil && p.MountArtifactsStore != nil && *p.MountArtifactsStore
}

// AuthOn tells whether the tracking API's token is sent and handed to the
// wrapped command (default true).
func (p *Plugins) AuthOn() bool { return p == nil || on(p.Auth) }

// ExternalHostOn tells whether the tracking API is reached at its external
// URL rather than its in-cluster one (default false).
func (p *Plugins) ExternalHostOn() bool { return p != nil && p.ExternalHost != nil && *p.ExternalHost }

// SyncIntervalSeconds returns sidecar.syncInterval, if given.
func (p *Plugins) SyncIntervalSeconds() (float64, bool) {
	if p == nil || p.Sidecar == nil || p.Sidecar.SyncInterval == nil {
		return 0, false
	}
	return *p.Sidecar.SyncInterval, true
}

// LogLevels maps Polyaxon's level names to slog's.
var LogLevels = map[string]string{
	"debug": "debug", "info": "info", "warning": "warn", "warn": "warn", "error": "error", "critical": "error",
}

// Load reads a file holding a `plugins:` section (a Polyaxon spec fragment) or
// the plugins keys at the top level, in YAML or JSON.
func Load(path string) (*Plugins, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--plugins: cannot read %q: %v", path, err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("--plugins %s: not YAML or JSON: %v", path, err)
	}
	// Decoded from the file as it is, so that an error's line numbers are
	// the file's.
	var p Plugins
	var into any = &p
	if _, ok := top["plugins"]; ok && len(top) == 1 {
		into = &struct {
			Plugins *Plugins `yaml:"plugins"`
		}{&p}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--plugins %s: %v (valid keys: auth, docker, shm, mountArtifactsStore, collectArtifacts, collectLogs, collectResources, autoResume, externalHost, logLevel, sidecar)", path, err)
	}
	if p.LogLevel != "" {
		if _, ok := LogLevels[strings.ToLower(p.LogLevel)]; !ok {
			return nil, fmt.Errorf("--plugins %s: logLevel %q is not a level; valid: debug, info, warning, error", path, p.LogLevel)
		}
	}
	return &p, nil
}
