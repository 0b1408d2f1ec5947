package plugins

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// summary writes the plugins that were given, and the defaults the
// collector then runs with, in one line a table can compare.
func summary(p *Plugins) string {
	var given []string
	for _, f := range []struct {
		name string
		v    *bool
	}{
		{"auth", p.Auth}, {"docker", p.Docker}, {"shm", p.Shm}, {"mountArtifactsStore", p.MountArtifactsStore},
		{"collectArtifacts", p.CollectArtifacts}, {"collectLogs", p.CollectLogs}, {"collectResources", p.CollectResources},
		{"autoResume", p.AutoResume}, {"externalHost", p.ExternalHost},
	} {
		if f.v != nil {
			given = append(given, fmt.Sprintf("%s=%v", f.name, *f.v))
		}
	}
	if p.LogLevel != "" {
		given = append(given, "logLevel="+p.LogLevel)
	}
	if s, ok := p.SyncIntervalSeconds(); ok {
		given = append(given, fmt.Sprintf("syncInterval=%v", s))
	}
	return strings.Join(given, " ")
}

func noticeList(ns []Notice) string {
	var out []string
	for _, n := range ns {
		kind := map[NoticeKind]string{NoEffect: "no-effect", Unknown: "unknown", Unread: "unread"}[n.Kind]
		out = append(out, fmt.Sprintf("%s %s@%d", kind, n.Path, n.Line))
	}
	return strings.Join(out, ", ")
}

// TestParseFixtures reads real-shaped polyaxonfiles, sections and keys (see
// testdata/) and checks what the collector would run with, what it notices,
// and what it refuses.
func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file    string
		want    string   // the given plugins, as summary writes them
		notices string   // as noticeList writes them
		err     []string // parts of the error; empty: no error
	}{
		{
			file: "operation.yaml",
			// The operation's plugins patch its component's (post_merge):
			// collectLogs true wins over the component's false.
			want:    "docker=false shm=true mountArtifactsStore=true collectLogs=true collectResources=false autoResume=false logLevel=warning syncInterval=30",
			notices: "no-effect plugins.syncStatuses@19, no-effect plugins.notifications@21, no-effect plugins.sidecar.image@25, no-effect plugins.sidecar.imageTag@26, no-effect plugins.sidecar.imagePullPolicy@27, no-effect plugins.sidecar.sleepInterval@28, no-effect plugins.sidecar.monitorLogs@30, no-effect plugins.sidecar.resources@31",
		},
		{file: "component.yaml", want: "auth=false collectArtifacts=true externalHost=true syncInterval=120"},
		{
			// JSON indented with tabs; pre_merge: the component's values win.
			file:    "operation.json",
			want:    "collectLogs=false collectResources=false logLevel=DEBUG",
			notices: "no-effect plugins.syncStatuses@9",
		},
		{
			file:    "compiled.yaml",
			want:    "auth=true docker=false shm=false mountArtifactsStore=false collectArtifacts=true collectLogs=true collectResources=true autoResume=true externalHost=false logLevel=info syncInterval=15",
			notices: "no-effect plugins.syncStatuses@12",
		},
		{
			file:    "python-form.yaml",
			want:    "mountArtifactsStore=false collectArtifacts=false collectLogs=false collectResources=true autoResume=false externalHost=true logLevel=error syncInterval=45",
			notices: "no-effect plugins.sync_statuses@9, no-effect plugins.sidecar.image_tag@14, no-effect plugins.sidecar.sleep_interval@16, no-effect plugins.sidecar.monitor_logs@17",
		},
		{
			// PyYAML's YAML 1.1 booleans (no, off) and a quoted "true".
			file:    "section.yaml",
			want:    "shm=false collectArtifacts=true collectLogs=false autoResume=false",
			notices: "no-effect plugins.tmux@6",
		},
		{file: "keys.json", want: "docker=true collectResources=false syncInterval=5", notices: "no-effect sidecar.monitorSpec@1"},
		{file: "anchors.yaml", want: "auth=false collectLogs=false collectResources=true syncInterval=20", notices: "unknown x-common@2"},
		{file: "empty.yaml"},
		{
			// A newer Polyaxon's keys, far from any known one: ignored.
			file:    "newer.yaml",
			want:    "collectLogs=false syncInterval=12",
			notices: "unknown scheduling@4, unknown plugins.gpuTelemetry@7, unknown plugins.sidecar.restartPolicy@10",
		},
		{
			// replace: a key on both sides is the operation's, recursing
			// into the sidecar; a key on one side only stays.
			file:    "replace.yaml",
			want:    "collectArtifacts=false collectLogs=true syncInterval=9",
			notices: "no-effect component.plugins.sidecar.image@11",
		},
		{file: "hubref.yaml", want: "collectResources=false", notices: "unread hubRef@3"},
		{file: "misspelt.yaml", err: []string{"line 5", "plugins.colectLogs", "did you mean collectLogs?"}},
		{file: "misspelt-section.yaml", err: []string{"line 1", "plugin", "did you mean plugins?"}},
		{file: "ref.yaml", err: []string{"line 6", "plugins.collectLogs", "{{ collect }}", "only Polyaxon resolves", "true or false"}},
		{file: "wrong-type.yaml", err: []string{"line 2", "plugins.collectArtifacts", `"maybe"`, "not true or false"}},
		{file: "wrong-kind.yaml", err: []string{"line 2", "kind", `"job"`, "operation, component, compiled_operation"}},
		{file: "top-level-plugin-key.yaml", err: []string{"line 3", "collectLogs", "belongs under plugins:"}},
		{file: "twice.yaml", err: []string{"line 3", "plugins.collect_logs", "given twice", "line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, notices, err := Parse(data, "--plugins "+tt.file)
			if len(tt.err) > 0 {
				if err == nil {
					t.Fatalf("no error; want one with %q (got %s)", tt.err, summary(p))
				}
				for _, w := range append(tt.err, "--plugins "+tt.file) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(p); got != tt.want {
				t.Errorf("plugins:\n got %s\nwant %s", got, tt.want)
			}
			if got := noticeList(notices); got != tt.notices {
				t.Errorf("notices:\n got %s\nwant %s", got, tt.notices)
			}
		})
	}
}

// TestDefaults checks the seed's defaults, for an empty file and no file.
func TestDefaults(t *testing.T) {
	p, _, err := Parse([]byte("plugins: {}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []*Plugins{p, nil} {
		got := fmt.Sprint(q.AuthOn(), q.DockerOn(), q.ShmOn(), q.MountArtifactsStoreOn(), q.CollectArtifactsOn(),
			q.CollectLogsOn(), q.CollectResourcesOn(), q.AutoResumeOn(), q.ExternalHostOn())
		if want := "true false true true true true true true false"; got != want {
			t.Errorf("auth docker shm mountArtifactsStore collectArtifacts collectLogs collectResources autoResume externalHost:\n got %s\nwant %s", got, want)
		}
	}
}

// TestEveryPolyaxonKeyAccepted gives every V1Plugins and sidecar key of
// current Polyaxon, in both forms: none is refused, and each one the
// collector does not act on is named.
func TestEveryPolyaxonKeyAccepted(t *testing.T) {
	for _, form := range []func(string) string{func(s string) string { return s }, snake} {
		var b strings.Builder
		b.WriteString("plugins:\n")
		for _, k := range pluginKeys {
			switch k.kind {
			case boolValue, anyValue:
				fmt.Fprintf(&b, "  %s: true\n", form(k.name))
			case levelValue:
				fmt.Fprintf(&b, "  %s: info\n", form(k.name))
			}
		}
		b.WriteString("  sidecar:\n")
		for _, k := range sidecarKeys {
			fmt.Fprintf(&b, "    %s: 10\n", form(k.name))
		}
		_, notices, err := Parse([]byte(b.String()), "test")
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		var named []string
		for _, n := range notices {
			if n.Kind != NoEffect {
				t.Errorf("notice %v, want only no-effect ones", n)
			}
			named = append(named, n.Key)
		}
		want := "tmux sandbox ssh syncStatuses notifications sidecar.image sidecar.imageTag sidecar.imagePullPolicy sidecar.sleepInterval sidecar.monitorLogs sidecar.monitorSpec sidecar.noConnections sidecar.resources"
		if got := strings.Join(named, " "); got != want {
			t.Errorf("no-effect keys:\n got %s\nwant %s", got, want)
		}
	}
}
