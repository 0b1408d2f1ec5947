package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestConformance runs the collector as a process against every store kind
// and checks, byte for byte, that the store mirrors the outputs folder: nested
// folders, empty files, names with spaces and non-ASCII characters, a 64 MiB
// file (a multipart upload), a file overwritten with new content, a file added
// while the collector runs, and a file written just before SIGTERM, which only
// the final sync can catch.
func TestConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, f storetest.Fixture) {
		t.Parallel()
		work := t.TempDir()
		out := filepath.Join(work, "outputs")
		big := make([]byte, 64<<20)
		_, _ = rand.Read(big)
		files := map[string][]byte{
			"model/checkpoints/epoch-1/weights.bin": []byte("weights one"),
			"model/config.json":                     []byte(`{"layers": 12}`),
			"empty.txt":                             {},
			"with space/a file.txt":                 []byte("spaces"),
			"données/résumé ü 日本.txt":               []byte("non-ascii"),
			"metrics.csv":                           []byte("step,loss\n1,0.9\n"),
			"big/blob.bin":                          big,
		}
		for name, data := range files {
			writeFile(t, filepath.Join(out, name), data)
		}

		p := start(t, work, f.Env,
			"--connections", f.Connections, "--run", "run-1",
			"--sync-interval", "0.3", "--settle", "0.2", "--outputs-path", out,
			"--part-size", "8MiB")
		store := f.Open(t)
		inStore := func() map[string][]byte { return storetest.Objects(t, store, "run-1/outputs/") }
		waitFor(t, 90*time.Second, "the initial files in the store", func() bool {
			return storetest.Diff(files, inStore()) == ""
		})

		// Overwrite one file with other content and add a new one while it runs.
		files["metrics.csv"] = []byte("step,loss\n1,0.9\n2,0.7\n3,0.5\n")
		writeFile(t, filepath.Join(out, "metrics.csv"), files["metrics.csv"])
		files["model/checkpoints/epoch-2/weights.bin"] = []byte("weights two")
		writeFile(t, filepath.Join(out, "model/checkpoints/epoch-2/weights.bin"), files["model/checkpoints/epoch-2/weights.bin"])
		waitFor(t, 60*time.Second, "the changed and added files in the store", func() bool {
			return storetest.Diff(files, inStore()) == ""
		})

		// A file written right before SIGTERM: only the final sync catches it.
		files["final/last words.txt"] = []byte("written just before SIGTERM")
		writeFile(t, filepath.Join(out, "final/last words.txt"), files["final/last words.txt"])
		if code := p.stop(t, 60*time.Second); code != 0 {
			t.Fatalf("exit code after SIGTERM = %d, want 0; output:\n%s", code, p.stderr.String())
		}

		if diff := storetest.Diff(storetest.Folder(t, out), inStore()); diff != "" {
			t.Fatalf("store does not mirror the outputs folder:\n%s", diff)
		}
		if diff := storetest.Diff(files, inStore()); diff != "" {
			t.Fatalf("store does not hold what the job wrote:\n%s", diff)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
