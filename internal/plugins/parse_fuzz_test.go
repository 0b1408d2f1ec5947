package plugins

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse: any bytes as a --plugins file: Parse returns plugins or an
// error that names the file, never a panic; what it read, written again as
// a plugins section (YAML, camelCase or snake_case, or JSON), reads back the
// same.
func FuzzParse(f *testing.F) {
	fixtures, _ := filepath.Glob("testdata/*")
	for _, p := range fixtures {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("auth: false\nsidecar: {syncInterval: 1.5e1}\nlogLevel: DEBUG\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "--plugins p.yaml"
		p, _, err := Parse(data, name)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name+": ") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		for _, form := range []string{"yaml", "snake", "json"} {
			again := writePlugins(p, form)
			q, _, err := Parse(again, name)
			if err != nil {
				t.Fatalf("%q read as %+v; written again (%s) as %q: %v", data, p, form, again, err)
			}
			if !samePlugins(p, q) {
				t.Fatalf("%q read as %s; written again (%s) as %q, read as %s", data, show(p), form, again, show(q))
			}
		}
	})
}

// writePlugins writes p as a plugins: section.
func writePlugins(p *Plugins, form string) []byte {
	fields := map[string]any{}
	for _, k := range pluginKeys {
		if k.kind == boolValue && *p.boolField(k.name) != nil {
			fields[k.name] = **p.boolField(k.name)
		}
	}
	if p.LogLevel != "" {
		fields["logLevel"] = p.LogLevel
	}
	if p.Sidecar != nil {
		sc := map[string]any{}
		if p.Sidecar.SyncInterval != nil {
			sc["syncInterval"] = *p.Sidecar.SyncInterval
		}
		fields["sidecar"] = sc
	}
	if form == "json" {
		b, err := json.Marshal(map[string]any{"plugins": fields})
		if err != nil {
			panic(err)
		}
		return b
	}
	var b strings.Builder
	b.WriteString("plugins:\n")
	for k, v := range fields {
		if form == "snake" {
			k = snake(k)
		}
		switch v := v.(type) {
		case map[string]any:
			fmt.Fprintf(&b, "  %s:\n", k)
			if s, ok := v["syncInterval"]; ok {
				name := "syncInterval"
				if form == "snake" {
					name = snake(name)
				}
				fmt.Fprintf(&b, "    %s: %s\n", name, strconv.FormatFloat(s.(float64), 'g', -1, 64))
			}
		case string:
			fmt.Fprintf(&b, "  %s: %s\n", k, strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "  %s: %v\n", k, v)
		}
	}
	return []byte(b.String())
}

func samePlugins(a, b *Plugins) bool {
	a2, b2 := *a, *b
	a2.Notices, b2.Notices = nil, nil
	// A sidecar: without syncInterval is no setting.
	for _, p := range []*Plugins{&a2, &b2} {
		if p.Sidecar != nil && p.Sidecar.SyncInterval == nil {
			p.Sidecar = nil
		}
	}
	return reflect.DeepEqual(a2, b2)
}

func show(p *Plugins) string {
	b, _ := json.Marshal(p)
	return string(b)
}
