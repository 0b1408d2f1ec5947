package plugins

import (
	"sort"
	"strings"
	"unicode"

	"github.com/mlsidecar/collector/internal/spelling"
)

// valueKind is what a key's value must be for the collector to act on it.
type valueKind int

const (
	boolValue valueKind = iota
	levelValue
	secondsValue
	sidecarValue
	anyValue // accepted as it is: the collector does not read it
)

// key is one field of a Polyaxon schema, by its YAML name (camelCase, as
// Polyaxon writes it); its Python name is the snake_case form.
type key struct {
	name   string
	kind   valueKind
	effect bool // the collector acts on it
}

// pluginKeys are V1Plugins' fields, in the order of Polyaxon's docs.
var pluginKeys = []key{
	{"auth", boolValue, true},
	{"docker", boolValue, true},
	{"shm", boolValue, true},
	{"tmux", anyValue, false},
	{"sandbox", anyValue, false},
	{"ssh", anyValue, false},
	{"mountArtifactsStore", boolValue, true},
	{"collectArtifacts", boolValue, true},
	{"collectLogs", boolValue, true},
	{"collectResources", boolValue, true},
	{"syncStatuses", anyValue, false},
	{"autoResume", boolValue, true},
	{"externalHost", boolValue, true},
	{"logLevel", levelValue, true},
	{"sidecar", sidecarValue, true},
	{"notifications", anyValue, false},
}

// sidecarKeys are V1PolyaxonSidecarContainer's fields.
var sidecarKeys = []key{
	{"image", anyValue, false},
	{"imageTag", anyValue, false},
	{"imagePullPolicy", anyValue, false},
	{"sleepInterval", anyValue, false},
	{"syncInterval", secondsValue, true},
	{"monitorLogs", anyValue, false},
	{"monitorSpec", anyValue, false},
	{"noConnections", anyValue, false},
	{"resources", anyValue, false},
}

// specKeys are the top-level fields of a polyaxonfile: V1Operation,
// V1Component and V1CompiledOperation together (BaseComponent, BaseOp and
// their own).
var specKeys = keysNamed("version", "kind", "name", "description", "tags", "presets", "queue", "namespace",
	"cache", "termination", "plugins", "build", "hooks", "isApproved", "cost", "mount",
	"schedule", "events", "matrix", "joins", "dependencies", "trigger", "conditions", "skipOnUpstreamSkip",
	"params", "hubRef", "dagRef", "urlRef", "pathRef", "component", "patchStrategy", "isPreset", "runPatch",
	"template", "inputs", "outputs", "contexts", "run")

// componentKeys are V1Component's fields, for an operation's inline
// component.
var componentKeys = keysNamed("version", "kind", "name", "description", "tags", "presets", "queue", "namespace",
	"cache", "termination", "plugins", "build", "hooks", "isApproved", "cost", "mount",
	"inputs", "outputs", "run", "template")

// specKinds are the polyaxonfile kinds that may carry plugins.
var specKinds = []string{"operation", "component", "compiled_operation"}

func keysNamed(names ...string) []key {
	keys := make([]key, len(names))
	for i, n := range names {
		keys[i] = key{name: n, kind: anyValue}
	}
	return keys
}

// snake is a camelCase name in Python's form: mountArtifactsStore is
// mount_artifacts_store.
func snake(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lookup finds the key written as name, in either form.
func lookup(keys []key, name string) (key, bool) {
	for _, k := range keys {
		if name == k.name || name == snake(k.name) {
			return k, true
		}
	}
	return key{}, false
}

// near returns the known key that name is a misspelling of, in the form
// (camelCase or snake_case) name is written in, or "".
// Close means: the same letters but for case, '_' and '-', or one edit
// away from a short key, two from a longer one.
func near(keys []key, name string) string {
	n := fold(name)
	best, bestDist := "", -1
	for _, k := range keys {
		f := fold(k.name)
		limit := 2
		if len(f) <= 5 {
			limit = 1
		}
		if len(n) > len(f)+limit || len(f) > len(n)+limit {
			continue // the lengths alone are further apart
		}
		d := spelling.Distance(n, f)
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = k.name, d
			if strings.Contains(name, "_") {
				best = snake(k.name)
			}
		}
	}
	return best
}

func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// names lists the keys' YAML names, sorted, for an error message.
func names(keys []key) string {
	list := make([]string, len(keys))
	for i, k := range keys {
		list[i] = k.name
	}
	sort.Strings(list)
	return strings.Join(list, ", ")
}
