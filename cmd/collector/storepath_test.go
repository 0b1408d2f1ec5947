package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreIsNotTheOutputsFolder: a folder store that is the outputs folder
// (by any name: relative, absolute, through a symbolic link), or holds it in
// the run's own folder, is refused at start with exit 2, naming both
// settings, and nothing is written. A store inside the outputs folder is
// fine: the sync skips it.
func TestStoreIsNotTheOutputsFolder(t *testing.T) {
	dir := t.TempDir()
	outputs := filepath.Join(dir, "o")
	if err := os.MkdirAll(outputs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outputs, "model.txt"), []byte("weights"))
	if err := os.Symlink(outputs, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tt := range []struct {
		name, outputs, store string
		want                 []string
	}{
		{"same relative path", "./o", "./o", []string{"--store and --outputs-path", "both are the folder"}},
		{"relative and absolute", "./o", outputs, []string{"--store and --outputs-path"}},
		{"through a symbolic link", "./link", "./o", []string{"--store and --outputs-path"}},
		{"file URL", "./o", "file://" + outputs, []string{"--store and --outputs-path"}},
		{"outputs inside the run's folder", "./s/r/outputs", "./s", []string{"--outputs-path", "inside the run's folder"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := tree(t, dir)
			code, out := runInProcess(t, nil, "--run", "r", "--outputs-path", tt.outputs, "--store", tt.store,
				"--state-dir", filepath.Join(t.TempDir(), "state"), "--sync-interval", "0")
			if code != 2 {
				t.Fatalf("exit code = %d, want 2; output:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("message does not contain %q:\n%s", w, out)
				}
			}
			if after := tree(t, dir); after != before {
				t.Errorf("files changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// tree lists the files and folders under dir.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}
