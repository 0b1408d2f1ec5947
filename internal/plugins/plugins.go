package plugins

import (
	"errors"
	"fmt"
	"os"
	"reflect"
)

// Plugins is Polyaxon's V1Plugins as the collector reads it. A nil pointer
// (an empty LogLevel) was not given: its default applies.
type Plugins struct {
	Auth                *bool
	Docker              *bool
	Shm                 *bool
	MountArtifactsStore *bool
	CollectArtifacts    *bool
	CollectLogs         *bool
	CollectResources    *bool
	AutoResume          *bool
	ExternalHost        *bool
	LogLevel            string
	Sidecar             *Sidecar

	// Notices are what the file held that the collector accepts without
	// acting on: keys with no effect here and unknown keys, for the log at
	// start.
	Notices []Notice
}

// Sidecar is Polyaxon's V1PolyaxonSidecarContainer; the collector acts on
// SyncInterval only (the image fields are Kubernetes' business).
type Sidecar struct {
	SyncInterval *float64
}

// NoticeKind tells what a notice is about.
type NoticeKind int

const (
	// NoEffect is a Polyaxon key the collector accepts and does not act on.
	NoEffect NoticeKind = iota
	// Unknown is a key that is neither known nor close to a known one
	// (a newer Polyaxon's, or a typo far from any key); it is ignored.
	Unknown
	// Unread is an operation's reference to a component kept elsewhere
	// (hubRef, pathRef, urlRef, dagRef): that component's plugins are not
	// read, only the operation's own.
	Unread
)

// Notice is one key of the file the collector does not act on.
type Notice struct {
	Kind NoticeKind
	// Key is the plugins key (sidecar.imageTag), as Polyaxon names it for
	// a NoEffect notice, as written for an Unknown one.
	Key string
	// Path is where it was written, from the file's top
	// (component.plugins.sidecar.imageTag), and Line its line.
	Path string
	Line int
}

func (n Notice) String() string {
	at := n.Path
	if n.Line > 0 {
		at = fmt.Sprintf("line %d: %s", n.Line, n.Path)
	}
	switch n.Kind {
	case Unknown:
		return at + ": unknown key, ignored"
	case Unread:
		return at + ": the component it names is not read; only this file's plugins apply"
	}
	return at + ": accepted, no effect in the collector"
}

// The defaults are the seed's: every collection on, autoResume, auth, shm and
// mountArtifactsStore on; docker and externalHost off.
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
// of a mounted store (host_path, volume_claim) (default true).
func (p *Plugins) MountArtifactsStoreOn() bool { return p == nil || on(p.MountArtifactsStore) }

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

// LogLevels maps Polyaxon's level names (Python's, lower-cased) to slog's.
var LogLevels = map[string]string{
	"debug": "debug", "info": "info", "warning": "warn", "warn": "warn", "error": "error", "critical": "error",
}

// Load reads the plugins from a file (see Parse); its errors name the
// --plugins setting and the file.
func Load(path string) (*Plugins, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--plugins: cannot read %q: %v", path, err)
	}
	p, notices, err := Parse(data, "--plugins "+path)
	if err != nil {
		return nil, err
	}
	p.Notices = notices
	return p, nil
}

// PatchStrategy is how an operation's plugins patch its component's
// (Polyaxon's patchStrategy, post_merge unless the operation says).
type PatchStrategy string

// Polyaxon's patch strategies. For one key given on both sides, the
// operation's value wins with replace and post_merge, the component's with
// isnull and pre_merge; a key given on one side only is taken from it.
const (
	Replace   PatchStrategy = "replace"
	IsNull    PatchStrategy = "isnull"
	PostMerge PatchStrategy = "post_merge"
	PreMerge  PatchStrategy = "pre_merge"
)

// patch returns base patched with over, key by key (recursing into the
// sidecar), the way Polyaxon compiles an operation over its component.
func patch(base, over *Plugins, s PatchStrategy) *Plugins {
	switch {
	case over == nil:
		return base
	case base == nil:
		return over
	}
	out := *base
	patchFields(reflect.ValueOf(&out).Elem(), reflect.ValueOf(over).Elem(), s == Replace || s == PostMerge)
	return &out
}

func patchFields(dst, over reflect.Value, overWins bool) {
	for i := range dst.NumField() {
		d, o := dst.Field(i), over.Field(i)
		if d.Type() == reflect.TypeFor[[]Notice]() || o.IsZero() {
			continue
		}
		switch {
		case d.IsZero():
			d.Set(o)
		case d.Kind() == reflect.Pointer && d.Elem().Kind() == reflect.Struct:
			merged := reflect.New(d.Elem().Type())
			merged.Elem().Set(d.Elem())
			patchFields(merged.Elem(), o.Elem(), overWins)
			d.Set(merged)
		case overWins:
			d.Set(o)
		}
	}
}
