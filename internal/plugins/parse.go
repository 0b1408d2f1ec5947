package plugins

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse reads the plugins out of the bytes of a file, YAML or JSON, in any
// of the forms Polyaxon users have at hand:
//   - a polyaxonfile: kind operation, component or compiled_operation, with
//     its plugins: at the top; an operation's inline component: may carry
//     its own, which the operation's patch (patchStrategy, post_merge unless
//     given) as Polyaxon compiles them;
//   - a bare plugins: section;
//   - the plugins keys alone.
//
// Keys are camelCase (Polyaxon's YAML) or snake_case (its Python names).
// name prefixes every error (a flag and a path: "--plugins p.yaml").
// The notices list what the collector accepts without acting on; an error
// is a file the collector must refuse: not YAML or JSON, a key close to a
// known one (a misspelling), a value of the wrong type for a key the
// collector acts on, or a Polyaxon reference ({{ ... }}) in one.
func Parse(data []byte, name string) (p *Plugins, notices []Notice, err error) {
	r := &reader{name: name}
	defer func() {
		// The YAML library is not ours; a panic on odd input is a refusal.
		if v := recover(); v != nil {
			p, notices, err = nil, nil, fmt.Errorf("%s: not YAML or JSON: %v", name, v)
		}
	}()
	root, err := r.document(data)
	if err != nil {
		return nil, nil, err
	}
	if p, err = r.top(root); err != nil {
		return nil, nil, err
	}
	if p == nil {
		p = &Plugins{}
	}
	p.Notices = nil
	return p, r.notices, nil
}

// reader is one Parse: the file's name for errors and what it noticed.
type reader struct {
	name    string
	noLines bool // the file was JSON that YAML refused: no line numbers
	notices []Notice
	// merged holds each mapping's pairs once listed: anchors merged into
	// many mappings (<<: [*a, *a, ...] over levels) are listed once each.
	merged map[*yaml.Node][]pair
}

func (r *reader) errorf(at *yaml.Node, format string, args ...any) error {
	if r.noLines || at == nil || at.Line == 0 {
		return fmt.Errorf("%s: "+format, append([]any{r.name}, args...)...)
	}
	return fmt.Errorf("%s: line %d: "+format, append([]any{r.name, at.Line}, args...)...)
}

func (r *reader) notice(kind NoticeKind, key, path string, at *yaml.Node) {
	line := at.Line
	if r.noLines {
		line = 0
	}
	r.notices = append(r.notices, Notice{Kind: kind, Key: key, Path: path, Line: line})
}

// document parses data; nil for an empty file.
func (r *reader) document(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	err := yaml.Unmarshal(data, &doc)
	if err != nil {
		// JSON that is not YAML (tabs in its indentation): read as JSON.
		var v any
		if json.Unmarshal(data, &v) == nil {
			if b, merr := yaml.Marshal(v); merr == nil {
				doc = yaml.Node{}
				if err = yaml.Unmarshal(b, &doc); err == nil {
					r.noLines = true
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML or JSON: %v", r.name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return resolve(doc.Content[0]), nil
}

// resolve follows an alias (*name) to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// pair is one key of a mapping and its value.
type pair struct {
	key   string
	at    *yaml.Node // the key, for its line
	value *yaml.Node
}

// pairs lists a mapping's keys in order, with those of its YAML merge keys
// (<<: *base) that it does not set itself, as PyYAML reads them.
func (r *reader) pairs(m *yaml.Node) ([]pair, error) {
	return r.mergedPairs(m, 0)
}

func (r *reader) mergedPairs(m *yaml.Node, depth int) ([]pair, error) {
	if ps, ok := r.merged[m]; ok {
		return ps, nil
	}
	var out, inherited []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), m.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			return nil, r.errorf(m.Content[i], "a key must be a name, not a %s", kindName(k))
		}
		if k.Tag == "!!merge" && depth < 8 {
			merged := []*yaml.Node{resolve(v)}
			if s := resolve(v); s != nil && s.Kind == yaml.SequenceNode {
				merged = merged[:0]
				for _, e := range s.Content {
					merged = append(merged, resolve(e))
				}
			}
			for _, mm := range merged {
				if mm == nil || mm.Kind != yaml.MappingNode {
					return nil, r.errorf(k, "<< merges a mapping, not a %s", kindName(mm))
				}
				ps, err := r.mergedPairs(mm, depth+1)
				if err != nil {
					return nil, err
				}
				inherited = append(inherited, ps...)
			}
			continue
		}
		out = append(out, pair{key: k.Value, at: k, value: v})
	}
	if len(inherited) > 0 {
		have := make(map[string]bool, len(out))
		for _, p := range out {
			have[p.key] = true
		}
		for _, p := range inherited {
			if !have[p.key] {
				have[p.key] = true
				out = append(out, p)
			}
		}
	}
	if r.merged == nil {
		r.merged = map[*yaml.Node][]pair{}
	}
	r.merged[m] = out
	return out, nil
}

func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "mapping"
	case n.Kind == yaml.SequenceNode:
		return "list"
	case isNull(n):
		return "null"
	}
	return "value " + strconv.Quote(n.Value)
}

// known checks one key of a mapping against keys: a key given twice (in
// either form) and a misspelling are errors; an unknown key is a notice.
// It returns the key and whether to read it.
func (r *reader) known(keys []key, p pair, path string, seen map[string]int) (key, bool, error) {
	full := join(path, p.key)
	k, ok := lookup(keys, p.key)
	if !ok {
		if s := near(keys, p.key); s != "" {
			return key{}, false, r.errorf(p.at, "%s is not a key here; did you mean %s? (valid keys: %s)", full, s, names(keys))
		}
		r.notice(Unknown, p.key, full, p.at)
		return key{}, false, nil
	}
	if line, dup := seen[k.name]; dup {
		return key{}, false, r.errorf(p.at, "%s is given twice (line %d has %s too)", full, line, k.name)
	}
	seen[k.name] = p.at.Line
	return k, true, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// top tells the file's form and reads its plugins.
func (r *reader) top(root *yaml.Node) (*Plugins, error) {
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, r.errorf(root, "want a polyaxonfile, a plugins: section or the plugins keys, not a %s", kindName(root))
	}
	ps, err := r.pairs(root)
	if err != nil {
		return nil, err
	}
	spec := false
	for _, p := range ps {
		if _, ok := lookup(pluginKeys, p.key); ok {
			continue
		}
		if _, ok := lookup(specKeys, p.key); ok {
			spec = true
		}
	}
	if !spec {
		// The plugins keys alone; a misspelt polyaxonfile key
		// (plugin:, kinds:) is an error too.
		for _, p := range ps {
			if _, ok := lookup(pluginKeys, p.key); !ok && near(pluginKeys, p.key) == "" {
				if s := near(specKeys, p.key); s != "" {
					return nil, r.errorf(p.at, "%s is not a key here; did you mean %s?", p.key, s)
				}
			}
		}
		return r.plugins(root, "")
	}
	return r.spec(ps, specKeys, "")
}

// spec reads a polyaxonfile's (or an inline component's) keys: its
// plugins, and its inline component's patched by them.
func (r *reader) spec(ps []pair, keys []key, path string) (*Plugins, error) {
	var own, component *Plugins
	strategy := PostMerge
	seen := map[string]int{}
	for _, p := range ps {
		full := join(path, p.key)
		if _, ok := lookup(pluginKeys, p.key); ok {
			return nil, r.errorf(p.at, "%s: a plugins key at the top of a polyaxonfile; it belongs under %s", full, join(path, "plugins:"))
		}
		k, ok, err := r.known(keys, p, path, seen)
		if err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		v := resolve(p.value)
		switch k.name {
		case "kind":
			if !isNull(v) && (v.Kind != yaml.ScalarNode || !contains(specKinds, v.Value)) {
				return nil, r.errorf(p.at, "%s: %s is not a polyaxonfile kind that carries plugins; want %s (or a bare plugins: section)",
					full, kindName(v), strings.Join(specKinds, ", "))
			}
		case "plugins":
			if own, err = r.plugins(v, full); err != nil {
				return nil, err
			}
		case "component":
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return nil, r.errorf(p.at, "%s: want the component, a mapping, not a %s", full, kindName(v))
			}
			cps, err := r.pairs(v)
			if err != nil {
				return nil, err
			}
			if component, err = r.spec(cps, componentKeys, full); err != nil {
				return nil, err
			}
		case "patchStrategy":
			if isNull(v) {
				continue
			}
			s := PatchStrategy(v.Value)
			if v.Kind != yaml.ScalarNode || (s != Replace && s != IsNull && s != PostMerge && s != PreMerge) {
				return nil, r.errorf(p.at, "%s: %s is not a patch strategy; valid: replace, isnull, post_merge, pre_merge", full, kindName(v))
			}
			strategy = s
		case "hubRef", "urlRef", "pathRef", "dagRef":
			if !isNull(v) {
				r.notice(Unread, k.name, full, p.at)
			}
		}
	}
	return patch(component, own, strategy), nil
}

// plugins reads a plugins mapping; path is where it is ("" for the bare
// keys at the top).
func (r *reader) plugins(n *yaml.Node, path string) (*Plugins, error) {
	if isNull(n) {
		return nil, nil
	}
	what := path
	if what == "" {
		what = "the file"
	}
	if n.Kind != yaml.MappingNode {
		if isRef(n) {
			return nil, r.errorf(n, "%s is a Polyaxon reference (%s), which only Polyaxon resolves; write the plugins keys", what, n.Value)
		}
		return nil, r.errorf(n, "%s: want the plugins keys, a mapping, not a %s", what, kindName(n))
	}
	ps, err := r.pairs(n)
	if err != nil {
		return nil, err
	}
	p := &Plugins{}
	seen := map[string]int{}
	for _, pr := range ps {
		k, ok, err := r.known(pluginKeys, pr, path, seen)
		if err != nil {
			return nil, err
		}
		v := resolve(pr.value)
		if !ok || isNull(v) {
			continue
		}
		full := join(path, pr.key)
		if !k.effect {
			r.notice(NoEffect, k.name, full, pr.at)
			continue
		}
		switch k.kind {
		case boolValue:
			b, err := r.boolean(v, full)
			if err != nil {
				return nil, err
			}
			*p.boolField(k.name) = &b
		case levelValue:
			if v.Kind != yaml.ScalarNode || isRef(v) {
				return nil, r.errorf(pr.at, "%s: %s is not a level; valid: debug, info, warning, error, critical", full, kindName(v))
			}
			if _, ok := LogLevels[strings.ToLower(v.Value)]; !ok {
				return nil, r.errorf(pr.at, "%s: %q is not a level; valid: debug, info, warning, error, critical", full, v.Value)
			}
			p.LogLevel = v.Value
		case sidecarValue:
			if p.Sidecar, err = r.sidecar(v, full); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *Plugins) boolField(name string) **bool {
	switch name {
	case "auth":
		return &p.Auth
	case "docker":
		return &p.Docker
	case "shm":
		return &p.Shm
	case "mountArtifactsStore":
		return &p.MountArtifactsStore
	case "collectArtifacts":
		return &p.CollectArtifacts
	case "collectLogs":
		return &p.CollectLogs
	case "collectResources":
		return &p.CollectResources
	case "autoResume":
		return &p.AutoResume
	case "externalHost":
		return &p.ExternalHost
	}
	panic("plugins: no bool field " + name)
}

// sidecar reads plugins.sidecar: syncInterval, and notices for the rest.
func (r *reader) sidecar(n *yaml.Node, path string) (*Sidecar, error) {
	if n.Kind != yaml.MappingNode {
		if isRef(n) {
			return nil, r.errorf(n, "%s is a Polyaxon reference (%s), which only Polyaxon resolves; write its keys", path, n.Value)
		}
		return nil, r.errorf(n, "%s: want the sidecar's keys, a mapping, not a %s", path, kindName(n))
	}
	ps, err := r.pairs(n)
	if err != nil {
		return nil, err
	}
	var s Sidecar
	seen := map[string]int{}
	for _, p := range ps {
		k, ok, err := r.known(sidecarKeys, p, path, seen)
		if err != nil {
			return nil, err
		}
		v := resolve(p.value)
		if !ok || isNull(v) {
			continue
		}
		full := join(path, p.key)
		if !k.effect {
			r.notice(NoEffect, "sidecar."+k.name, full, p.at)
			continue
		}
		secs, err := r.seconds(v, full)
		if err != nil {
			return nil, err
		}
		s.SyncInterval = &secs
	}
	if s.SyncInterval == nil {
		return nil, nil
	}
	return &s, nil
}

// yaml11Bools are the plain words PyYAML (YAML 1.1), which Polyaxon reads
// its files with, takes as booleans beside true and false.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

func (r *reader) boolean(n *yaml.Node, path string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!bool" {
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, nil
			}
		}
		if b, ok := yaml11Bools[n.Value]; ok && n.Style == 0 && n.Tag == "!!str" {
			return b, nil
		}
		// "true" quoted, as templating tools (Helm) often write it.
		if v := strings.ToLower(n.Value); n.Tag == "!!str" && (v == "true" || v == "false") {
			return v == "true", nil
		}
		if isRef(n) {
			return false, r.errorf(n, "%s is a Polyaxon reference (%s), which only Polyaxon resolves; write true or false", path, n.Value)
		}
	}
	return false, r.errorf(n, "%s: %s is not true or false", path, kindName(n))
}

// maxSeconds is the longest interval a time.Duration holds, in seconds.
const maxSeconds = float64(math.MaxInt64 / 1e9)

func (r *reader) seconds(n *yaml.Node, path string) (float64, error) {
	if n.Kind == yaml.ScalarNode && isRef(n) {
		return 0, r.errorf(n, "%s is a Polyaxon reference (%s), which only Polyaxon resolves; write the seconds", path, n.Value)
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!bool" {
		f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
		if err == nil && !math.IsNaN(f) && math.Abs(f) <= maxSeconds {
			return f, nil
		}
	}
	return 0, r.errorf(n, "%s: %s is not a number of seconds", path, kindName(n))
}

// isRef tells a Polyaxon reference ({{ params.x }}), which Polyaxon's
// compiler resolves before a run starts.
func isRef(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "{{")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
