package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestOwnership checks the ownership rule of DESIGN.md against every store
// kind: within one attempt the collector deletes from outputs/ only what it
// saw in the folder during that attempt and then saw deleted. An earlier
// attempt's file that this attempt never had (autoResume off, or a restore
// narrowed by --include) stays in the store, and a later retry gets it back.
func TestOwnership(t *testing.T) {
	storetest.Each(t, func(t *testing.T, f storetest.Fixture) {
		t.Parallel()
		env := map[string]string{}
		for _, kv := range f.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		root := f.Open(t)
		inStore := func(run string) map[string][]byte { return storetest.Objects(t, root, run+"/outputs/") }

		// attempt runs one wrapper-mode attempt of run on a new pod (an
		// outputs folder holding only files, no local state) and returns its
		// outputs folder, where command ran.
		attempt := func(run string, files map[string]string, command string, flags ...string) string {
			t.Helper()
			work := t.TempDir()
			out := filepath.Join(work, "outputs")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range files {
				writeFile(t, filepath.Join(out, name), []byte(data))
			}
			args := append([]string{"--connections", f.Connections, "--run", run, "--outputs-path", out,
				"--state-dir", filepath.Join(work, "state"), "--sync-interval", "0"}, flags...)
			code, msg := runInProcess(t, env, append(args, "--", "sh", "-c", command)...)
			if code != 0 {
				t.Fatalf("attempt of %s with %v exited %d:\n%s", run, flags, code, msg)
			}
			return out
		}
		bytesOf := func(files map[string]string) map[string][]byte {
			m := map[string][]byte{}
			for k, v := range files {
				m[k] = []byte(v)
			}
			return m
		}

		t.Run("auto-resume off keeps the earlier attempt's files", func(t *testing.T) {
			attempt("off", map[string]string{"one.txt": "one"}, "true")
			attempt("off", map[string]string{"two.txt": "two"}, "true", "--auto-resume=false")
			want := bytesOf(map[string]string{"one.txt": "one", "two.txt": "two"})
			if diff := storetest.Diff(want, inStore("off")); diff != "" {
				t.Fatalf("store after an attempt with autoResume off:\n%s", diff)
			}
			out := attempt("off", nil, "true")
			if diff := storetest.Diff(want, storetest.Folder(t, out)); diff != "" {
				t.Errorf("the next retry's restore:\n%s", diff)
			}
		})

		t.Run("a restore narrowed by --include keeps the others", func(t *testing.T) {
			attempt("include", map[string]string{"one.txt": "one", "sub/one.txt": "sub one", "two.txt": "two"}, "true")
			out := attempt("include", nil, `printf again > "$COLLECTOR_OUTPUTS_PATH/two-b.txt"`, "--include", "two*")
			if diff := storetest.Diff(bytesOf(map[string]string{"two.txt": "two", "two-b.txt": "again"}), storetest.Folder(t, out)); diff != "" {
				t.Fatalf("folder after a restore with --include two*:\n%s", diff)
			}
			want := bytesOf(map[string]string{"one.txt": "one", "sub/one.txt": "sub one", "two.txt": "two", "two-b.txt": "again"})
			if diff := storetest.Diff(want, inStore("include")); diff != "" {
				t.Fatalf("store after an attempt with --include two*:\n%s", diff)
			}
		})

		t.Run("a restored file the job deletes is deleted", func(t *testing.T) {
			attempt("restored", map[string]string{"keep.txt": "keep", "old.txt": "old"}, "true")
			attempt("restored", nil, `rm "$COLLECTOR_OUTPUTS_PATH/old.txt"`)
			if diff := storetest.Diff(bytesOf(map[string]string{"keep.txt": "keep"}), inStore("restored")); diff != "" {
				t.Fatalf("store after the job deleted a restored file:\n%s", diff)
			}
		})

		t.Run("a file seen then deleted is deleted", func(t *testing.T) {
			attempt("seen", map[string]string{"one.txt": "one"}, "true")
			work := t.TempDir()
			out := filepath.Join(work, "outputs")
			writeFile(t, filepath.Join(out, "two.txt"), []byte("two"))
			p := start(t, work, f.Env, "--connections", f.Connections, "--run", "seen", "--outputs-path", out,
				"--state-dir", filepath.Join(work, "state"), "--auto-resume=false", "--sync-interval", "0.2", "--settle", "0")
			waitFor(t, 60*time.Second, "two.txt in the store", func() bool { return inStore("seen")["two.txt"] != nil })
			if err := os.Remove(filepath.Join(out, "two.txt")); err != nil {
				t.Fatal(err)
			}
			if code := p.stop(t, 60*time.Second); code != 0 {
				t.Fatalf("exit code after SIGTERM = %d, want 0:\n%s", code, p.stderr.String())
			}
			if diff := storetest.Diff(bytesOf(map[string]string{"one.txt": "one"}), inStore("seen")); diff != "" {
				t.Fatalf("store after two.txt was seen and deleted:\n%s", diff)
			}
		})
	})
}
